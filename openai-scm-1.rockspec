rockspec_format = "3.0"
package = "openai"
version = "scm-1"
source = {
  url = "git+file:///dev/null", -- built from a checkout with `luarocks make`
}
description = {
  summary = "Native Lua client for the OpenAI API (a C core on libcurl)",
  detailed = [[
    require("openai"): chat completions with exact JSON mirroring (int64
    integers, floats, null, empty arrays), the official SDKs' retries, errors
    and headers, keep-alive connections per client. Lua 5.1 to 5.4 and
    LuaJIT 2.1.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1, < 5.5",
}
external_dependencies = {
  -- Debian keeps curl.h in the multiarch include directory, which the
  -- compiler searches by itself but luarocks does not: check the library.
  CURL = { library = "curl" },
}
-- The Makefile builds the module as `make` does (every source under src/, only
-- luaopen_openai_core exported, lua-compat53's header for Lua 5.1, 5.2 and
-- LuaJIT) and installs every module of lua/openai/.
build = {
  type = "make",
  build_variables = {
    LUA = "$(LUA)", -- the interpreter: its name picks the runtime
    LUA_INCDIR = "$(LUA_INCDIR)",
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    WERROR = "",
  },
  install_variables = {
    LUA = "$(LUA)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    WERROR = "",
    LUADIR = "$(LUADIR)",
    LIBDIR = "$(LIBDIR)",
  },
}
