# Development build of openai (C core openai.core + Lua layer).
# `make` builds build/openai/core.so; `make test` (Lua 5.4), `make test-all`
# (every runtime), `make demo`, `make bench`, `make bench-callgrind`,
# `make bench-concurrency`, `make install PREFIX=DIR` (LuaRocks tree layout).
# Debian packages only.

# LUA picks the runtime: lua5.1, lua5.2, lua5.3, lua5.4 (default) or luajit
# (Debian's luajit or OpenResty's luajit2: the same C API). Each has its own
# pkg-config name, LuaRocks version directory and build directory:
# build/openai/core.so for lua5.4, build/<LUA>/openai/core.so otherwise.
# LuaRocks (openai-scm-1.rockspec, build type "make") passes the path of the
# interpreter it runs, /usr/bin/lua5.1 say: its name is the runtime.
LUA         ?= lua5.4
override LUA := $(notdir $(LUA))
runtime_version = $(if $(filter luajit,$(1)),5.1,$(patsubst lua%,%,$(1)))
LUA_VERSION := $(call runtime_version,$(LUA))
ifeq ($(filter lua5.1 lua5.2 lua5.3 lua5.4 luajit,$(LUA)),)
$(error LUA must be one of lua5.1 lua5.2 lua5.3 lua5.4 luajit, not '$(LUA)')
endif
LUA_PC      := $(LUA)
# Lua 5.1, 5.2 and LuaJIT get the 5.3 C API from Debian's lua-compat53-dev,
# whose header sits beside Lua 5.1's and 5.2's. -isystem: its code is not ours
# to warn about, and it is searched after LuaJIT's own lua.h.
COMPAT53_DIR ?= $(if $(filter lua5.2,$(LUA)),/usr/include/lua5.2,/usr/include/lua5.1)
COMPAT53_CFLAGS = $(if $(filter lua5.1 lua5.2 luajit,$(LUA)),-isystem $(COMPAT53_DIR))
# The runtime's headers: LuaRocks gives their directory (LUA_INCDIR);
# otherwise pkg-config knows them.
LUA_INCDIR  ?=
RUNTIME_CFLAGS = $(if $(LUA_INCDIR),-I$(LUA_INCDIR),$(shell $(PKG_CONFIG) --cflags $(LUA_PC)))
PREFIX      ?= /usr/local
LUADIR      ?= $(PREFIX)/share/lua/$(LUA_VERSION)
LIBDIR      ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
PKG_CONFIG  ?= pkg-config

CC          ?= cc
OPT         ?= -O2 -g
# LuaRocks builds pass WERROR= : a warning of another compiler must not
# stop an install.
WERROR      ?= -Werror
WARN        := -std=c99 -Wall -Wextra -Wpedantic $(WERROR) -Wshadow \
               -Wstrict-prototypes -Wmissing-prototypes -Wcast-qual -Wformat=2
LIBFLAG     ?= -shared
# Deferred (=) so that `make deps` can install pkg-config files first.
DEP_CFLAGS   = $(RUNTIME_CFLAGS) $(shell $(PKG_CONFIG) --cflags libcurl) $(COMPAT53_CFLAGS)
DEP_LIBS     = $(shell $(PKG_CONFIG) --libs libcurl) -lm -pthread
# -fvisibility=hidden: the module exports luaopen_openai_core alone.
# -iquote: a source names the headers of other parts from src/
# ("codec/json.h", "curl/transfer.h"), and <curl/curl.h> still means libcurl's.
ALL_CFLAGS   = $(OPT) $(WARN) -fPIC -fvisibility=hidden -iquote src $(DEP_CFLAGS) $(CFLAGS)
SAN_FLAGS   ?=

# BUILD can be overridden (`make BUILD=build/asan ...`): the sanitizer
# targets below build their own copies of the module there.
BUILD   ?= $(if $(filter lua5.4,$(LUA)),build,build/$(LUA))
# The parts of the C core: src/ the module entry and the runtime pieces the
# others share, src/codec/ the transport-free codecs (JSON, SSE, response
# heads), src/curl/ the libcurl transport.
SRC_DIRS := src src/codec src/curl
SOURCES := $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c))
HEADERS := $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.h))
OBJECTS := $(SOURCES:src/%.c=$(BUILD)/obj/%.o)
MODULE  := $(BUILD)/openai/core.so
LUA_MODULES := $(wildcard lua/openai/*.lua lua/openai/*/*.lua)

# Deferred (=): the lists it ends with are defined below it.
DEBIAN_PACKAGES  = make gcc pkg-config lua5.4 liblua5.4-dev libcurl4-openssl-dev \
                   lua-busted lua-luv lua-socket lua-cjson lua-posix luarocks \
                   ca-certificates locales openssl stunnel4 iproute2 \
                   $(RUNTIME_PACKAGES) $(HOST_PACKAGES) $(CONFORMANCE_PACKAGES)
# Every runtime `make test-all` runs, with its headers. LuaJIT is OpenResty's
# luajit2, the one Debian's nginx Lua module links (it conflicts with Debian's
# luajit package; the module built here loads in either).
RUNTIME_PACKAGES := lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev \
                    luajit2 libluajit2-5.1-dev lua-compat53-dev
# The hosts the specs run the module in: nginx with its Lua module (and the
# lua-resty-core that module loads), LÖVE and Neovim (spec/lua54/hosts_spec.lua
# runs examples/love and examples/nvim in them; both take luajit2's library
# in place of Debian's libluajit). Debian's own luajit is not installed
# (it conflicts with luajit2): tools/luajit-debian.sh unpacks it in build/.
HOST_PACKAGES := nginx libnginx-mod-http-ndk libnginx-mod-http-lua lua-resty-core love neovim
# spec/lua54/conformance_spec.lua checks the requests against OpenAI's
# OpenAPI description with tools/openapi-check.py, run by Debian's python3.
CONFORMANCE_PACKAGES := python3 python3-yaml python3-jsonschema
# Where that description is (a path, for `make test OPENAI_OPENAPI_SPEC=...`
# as for the environment variable); unset, the spec looks near the repository.
ifdef OPENAI_OPENAPI_SPEC
export OPENAI_OPENAPI_SPEC
endif

.PHONY: all deps docs test test-all demo bench bench-build bench-concurrency bench-callgrind bench-openresty install uninstall clean \
        asan valgrind tsan threads-host hooks-module fork-helper luajit-debian fuzz fuzz-build ci-extra

all: $(MODULE)

$(BUILD)/obj/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -c -o $@ $<

$(MODULE): $(OBJECTS) | $(BUILD)/openai
	$(CC) $(LIBFLAG) $(SAN_FLAGS) $(LDFLAGS) -o $@ $(OBJECTS) $(DEP_LIBS)

$(BUILD)/openai:
	mkdir -p $@

deps:
	@sh tools/deps.sh $(DEBIAN_PACKAGES)

# The README's method table and the type stubs' resources, from the
# declarations in lua/openai/resources/ (spec/docs_spec.lua checks them).
docs: all
	@lua5.4 tools/docs.lua

test: deps
	@$(MAKE) --no-print-directory all
	@sh tools/run-tests.sh

# The suite under every runtime, each built first ($(MAKE) LUA=... all):
# a line per runtime, then "N passed, M failed" over all (tools/test-all.sh).
TEST_RUNTIMES := lua5.1 lua5.2 lua5.3 lua5.4 luajit
test-all: deps
	@MAKE="$(MAKE)" sh tools/test-all.sh $(TEST_RUNTIMES)

demo: deps
	@$(MAKE) --no-print-directory all
	@sh tools/demo.sh

# `make bench` also needs a local HTTP server (nginx, started by tools/bench.sh
# on 127.0.0.1 from a config under build/bench/) and the anchors' libraries:
# lua-curl for Lua 5.1 (lua-cjson and lua-socket are in DEBIAN_PACKAGES),
# yajl for the "libcurl + a C parser" anchor; wrk for `make bench-openresty`;
# nginx's Lua module and Node.js (with npm: openai-node, installed by the
# script with npm ci) for the concurrency part.
BENCH_PACKAGES := nginx lua5.1 lua-curl libyajl-dev wrk libnginx-mod-http-ndk libnginx-mod-http-lua nodejs
BENCH_BUILD    := build/bench
FLOOR          := $(BENCH_BUILD)/floor
MULTI          := $(BENCH_BUILD)/multi
BENCH_C_FLAGS   = $(OPT) $(WARN) $(shell $(PKG_CONFIG) --cflags libcurl yajl) $(CFLAGS)
BENCH_C_LIBS    = $(shell $(PKG_CONFIG) --libs libcurl yajl) $(LDFLAGS)

bench: deps
	@sh tools/deps.sh $(BENCH_PACKAGES)
	@$(MAKE) --no-print-directory all bench-build
	@sh tools/bench.sh
	@echo
	@sh tools/bench-concurrency.sh

# Only the concurrency part of `make bench`: 16 retrieves in flight and
# 1 000 streams at once from one thread (tools/bench-concurrency.sh).
bench-concurrency: deps
	@sh tools/deps.sh $(BENCH_PACKAGES)
	@$(MAKE) --no-print-directory all bench-build
	@sh tools/bench-concurrency.sh

bench-build: $(FLOOR) $(MULTI)

# The floor anchor: libcurl alone (and, with --yajl, libcurl + yajl), no Lua.
# The curl-multi anchor: many transfers in flight from one thread.
$(FLOOR) $(MULTI): $(BENCH_BUILD)/%: bench/%.c bench/common.c bench/common.h
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_C_FLAGS) -o $@ $< bench/common.c $(BENCH_C_LIBS)

# Instruction counts (callgrind) of a retrieve and of JSON decode/encode, per
# call: nearly deterministic, for comparing changes on a noisy machine.
bench-callgrind: deps
	@sh tools/deps.sh $(BENCH_PACKAGES) valgrind
	@$(MAKE) --no-print-directory all bench-build
	@sh tools/bench-callgrind.sh

# Calls from inside nginx (one worker, against a server that answers in
# 200 ms): blocking libcurl, libcurl in nginx's thread pool, and cosockets,
# with a trivial location loaded alongside (tools/bench-openresty.sh). The
# worker loads the LuaJIT build of the module.
bench-openresty: deps
	@sh tools/deps.sh $(BENCH_PACKAGES)
	@$(MAKE) --no-print-directory LUA=luajit all
	@sh tools/bench-openresty.sh

install: $(MODULE)
	install -d $(DESTDIR)$(LIBDIR)/openai
	for f in $(LUA_MODULES:lua/%=%); do install -D -m 644 lua/$$f $(DESTDIR)$(LUADIR)/$$f || exit 1; done
	install -m 755 $(MODULE) $(DESTDIR)$(LIBDIR)/openai/core.so

uninstall:
	rm -rf $(DESTDIR)$(LUADIR)/openai $(DESTDIR)$(LIBDIR)/openai

clean:
	rm -rf $(BUILD)

# ---- sanitizers, valgrind, threads, fuzzing ----------------------------------
# Every variant lives under build/ in its own directory, so none of them
# touches build/openai/core.so. Extra Debian packages come via tools/deps.sh.

SAN_CC          ?= clang
SAN_PACKAGES    := clang libclang-rt-14-dev
ASAN_BUILD      := build/asan
ASAN_SAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer
TSAN_BUILD      := build/tsan
TSAN_SAN_FLAGS  := -fsanitize=thread -fno-omit-frame-pointer
FUZZ_BUILD      := build/fuzz$(if $(filter lua5.4,$(LUA)),,-$(LUA))
FUZZ_SECONDS    ?= 60
LUA_CFLAGS       = $(shell $(PKG_CONFIG) --cflags $(LUA_PC)) $(COMPAT53_CFLAGS)
LUA_LIBS         = $(shell $(PKG_CONFIG) --libs $(LUA_PC))
THREADS_HOST    := build/threads/host

# A sanitizer build dir remembers its flags; other flags start it afresh.
san_stamp = f='$(2)'; [ "$$(cat $(1)/.flags 2>/dev/null)" = "$$f" ] || \
  { rm -rf $(1); mkdir -p $(1); echo "$$f" > $(1)/.flags; }

# The whole busted suite with the module built under ASan + UBSan.
asan: deps
	@sh tools/deps.sh $(SAN_PACKAGES)
	@$(MAKE) --no-print-directory all
	@$(call san_stamp,$(ASAN_BUILD),$(SAN_CC) $(ASAN_SAN_FLAGS) -z nodelete)
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) CC=$(SAN_CC) OPT="-O1 -g" \
	  SAN_FLAGS="$(ASAN_SAN_FLAGS)" LDFLAGS="-Wl,-z,nodelete" $(ASAN_BUILD)/openai/core.so
	@sh tools/sanitize.sh asan $(ASAN_BUILD)

# The whole busted suite (the busted process) under valgrind memcheck.
valgrind: deps
	@sh tools/deps.sh valgrind
	@$(MAKE) --no-print-directory all
	@sh tools/sanitize.sh valgrind

# The thread test host (no sanitizer), used by spec/threads_spec.lua.
threads-host: $(THREADS_HOST) $(MODULE)

$(THREADS_HOST): spec/threads/host.c
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WARN) $(LUA_CFLAGS) $(CFLAGS) -o $@ $< $(LUA_LIBS) -pthread -ldl $(LDFLAGS)

# The test helper of spec/hooks_spec.lua: a hook set from a signal handler.
# One per runtime, beside its openai.core (make LUA=... hooks-module).
HOOKS_MODULE := $(BUILD)/spec/hooks.so
hooks-module: $(HOOKS_MODULE)

$(HOOKS_MODULE): spec/hooks/hooks.c
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WARN) -fPIC -shared $(LUA_CFLAGS) $(CFLAGS) -o $@ $<

# The test helper of spec/fork_spec.lua (fork and a bounded wait), one per
# runtime beside that runtime's module: $(BUILD)/spec/fork.so.
FORK_HELPER := $(BUILD)/spec/fork.so
fork-helper: $(FORK_HELPER)

$(FORK_HELPER): spec/fork/fork.c
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WARN) -fPIC -shared $(RUNTIME_CFLAGS) $(CFLAGS) -o $@ $<

# Debian's luajit, which conflicts with the luajit2 installed, unpacked
# under build/luajit-debian/ (spec/luajit_debian_spec.lua runs it).
luajit-debian:
	@sh tools/luajit-debian.sh

# 8 threads x (1000 retrieves + 50 streams) under ThreadSanitizer.
tsan: deps
	@sh tools/deps.sh $(SAN_PACKAGES)
	@$(call san_stamp,$(TSAN_BUILD),$(SAN_CC) $(TSAN_SAN_FLAGS))
	@$(MAKE) --no-print-directory BUILD=$(TSAN_BUILD) CC=$(SAN_CC) OPT="-O1 -g" \
	  SAN_FLAGS="$(TSAN_SAN_FLAGS)" $(TSAN_BUILD)/openai/core.so
	@mkdir -p $(TSAN_BUILD)
	$(SAN_CC) -O1 -g $(TSAN_SAN_FLAGS) $(WARN) $(LUA_CFLAGS) -o $(TSAN_BUILD)/host \
	  spec/threads/host.c $(LUA_LIBS) -pthread -ldl
	@sh tools/sanitize.sh tsan $(TSAN_BUILD)

# libFuzzer targets in fuzz/, each run for FUZZ_SECONDS (tools/fuzz.sh).
# Our sources get coverage instrumentation (fuzzer-no-link); Lua and
# libcurl are Debian's. Each target links only the objects it needs.
FUZZ_TARGETS  ?= json_decode json_roundtrip sse http_head url
FUZZ_BINS     := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)
FUZZ_CFLAGS   := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_ALL_OBJS := $(SOURCES:src/%.c=$(FUZZ_BUILD)/obj/%.o)
fuzz_objs      = $(FUZZ_BUILD)/obj/codec/json_decode.o $(FUZZ_BUILD)/obj/codec/json_encode.o \
                 $(FUZZ_BUILD)/obj/int64.o $(FUZZ_BUILD)/obj/compat.o
$(FUZZ_BUILD)/json_decode: FUZZ_OBJS = $(fuzz_objs)
$(FUZZ_BUILD)/json_roundtrip: FUZZ_OBJS = $(fuzz_objs)
$(FUZZ_BUILD)/sse: FUZZ_OBJS = $(FUZZ_BUILD)/obj/codec/sse.o $(FUZZ_BUILD)/obj/codec/sse_decoder.o \
                               $(FUZZ_BUILD)/obj/codec/event_queue.o $(FUZZ_BUILD)/obj/buffer.o $(FUZZ_BUILD)/obj/compat.o
$(FUZZ_BUILD)/http_head: FUZZ_OBJS = $(FUZZ_BUILD)/obj/codec/http_head.o $(FUZZ_BUILD)/obj/compat.o
$(FUZZ_BUILD)/url: FUZZ_OBJS = $(FUZZ_ALL_OBJS)

fuzz: deps
	@sh tools/deps.sh $(SAN_PACKAGES)
	@$(MAKE) --no-print-directory fuzz-build
	@sh tools/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-build: $(FUZZ_BINS)

$(FUZZ_BUILD)/obj/%.o: src/%.c $(HEADERS) Makefile
	@mkdir -p $(dir $@)
	$(SAN_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(WARN) -fPIC -iquote src $(DEP_CFLAGS) -c -o $@ $<

$(FUZZ_BINS): $(FUZZ_BUILD)/%: fuzz/%.c fuzz/fuzz_common.h $(FUZZ_ALL_OBJS) Makefile
	$(SAN_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(WARN) -iquote src $(DEP_CFLAGS) \
	  -DOPENAI_SOURCE_ROOT='"$(CURDIR)"' -o $@ $< $(FUZZ_OBJS) $(LUA_LIBS) $(DEP_LIBS)

# asan, valgrind, tsan and fuzz in sequence, with a timed summary.
ci-extra:
	@sh tools/ci-extra.sh
