# Development build of openai (C core openai.core + Lua layer).
# `make` builds build/openai/core.so; `make test`, `make demo`, `make bench`,
# `make install PREFIX=DIR` (LuaRocks tree layout). Debian packages only.

LUA         ?= lua5.4
LUA_VERSION := 5.4
PREFIX      ?= /usr/local
LUADIR      ?= $(PREFIX)/share/lua/$(LUA_VERSION)
LIBDIR      ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
PKG_CONFIG  ?= pkg-config

CC          ?= cc
OPT         ?= -O2 -g
WARN        := -std=c99 -Wall -Wextra -Wpedantic -Werror -Wshadow \
               -Wstrict-prototypes -Wmissing-prototypes -Wcast-qual -Wformat=2
# Deferred (=) so that `make deps` can install pkg-config files first.
DEP_CFLAGS   = $(shell $(PKG_CONFIG) --cflags lua5.4 libcurl yajl)
DEP_LIBS     = $(shell $(PKG_CONFIG) --libs libcurl yajl) -lm -pthread
ALL_CFLAGS   = $(OPT) $(WARN) -fPIC -fvisibility=hidden $(DEP_CFLAGS) $(CFLAGS)
SAN_FLAGS   ?=

BUILD   := build
SOURCES := $(wildcard src/*.c)
OBJECTS := $(SOURCES:src/%.c=$(BUILD)/obj/%.o)
MODULE  := $(BUILD)/openai/core.so
LUA_MODULES := $(wildcard lua/openai/*.lua)

DEBIAN_PACKAGES := make gcc pkg-config lua5.4 liblua5.4-dev libcurl4-openssl-dev \
                   libyajl-dev lua-busted lua-luv lua-socket lua-cjson luarocks \
                   ca-certificates

.PHONY: all deps test demo bench install uninstall clean

all: $(MODULE)

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -c -o $@ $<

$(MODULE): $(OBJECTS) | $(BUILD)/openai
	$(CC) -shared $(SAN_FLAGS) $(LDFLAGS) -o $@ $(OBJECTS) $(DEP_LIBS)

$(BUILD)/obj $(BUILD)/openai:
	mkdir -p $@

deps:
	@sh tools/deps.sh $(DEBIAN_PACKAGES)

test: deps
	@$(MAKE) --no-print-directory all
	@sh tools/run-tests.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@sh tools/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@sh tools/bench.sh

install: $(MODULE)
	install -d $(DESTDIR)$(LUADIR)/openai $(DESTDIR)$(LIBDIR)/openai
	install -m 644 $(LUA_MODULES) $(DESTDIR)$(LUADIR)/openai/
	install -m 755 $(MODULE) $(DESTDIR)$(LIBDIR)/openai/core.so

uninstall:
	rm -rf $(DESTDIR)$(LUADIR)/openai $(DESTDIR)$(LIBDIR)/openai

clean:
	rm -rf $(BUILD)
