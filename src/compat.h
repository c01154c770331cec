/* The one place that knows which Lua C API we build against.
 * Everything in src/ includes this instead of lua.h directly, so a Lua 5.1 /
 * LuaJIT build (OpenResty) only has to grow this header. */
#ifndef OPENAI_COMPAT_H
#define OPENAI_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 504
#error "openai.core needs Lua 5.4 (integers, lua_newuserdatauv, __close)"
#endif

/* The module is built with -fvisibility=hidden; only luaopen_* is exported. */
#if defined(__GNUC__)
#define OPENAI_EXPORT __attribute__((visibility("default")))
#else
#define OPENAI_EXPORT
#endif

/* Registry names of the metatables shared between C files. */
#define OPENAI_ARRAY_MT      "openai.array_mt"
#define OPENAI_CONNECTION_MT "openai.Connection"
#define OPENAI_STREAM_MT     "openai.Stream"

/* JSON null is a light userdata NULL: equal to cjson.null and ngx.null. */
#define openai_pushnull(L) lua_pushlightuserdata((L), NULL)
#define openai_isnull(L, i) \
  (lua_type((L), (i)) == LUA_TLIGHTUSERDATA && lua_touserdata((L), (i)) == NULL)

#endif
