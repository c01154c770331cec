/* The one place that knows which Lua C API we build against: Lua 5.1, 5.2,
 * 5.3, 5.4 and LuaJIT 2.1. Everything in src/ includes this instead of lua.h.
 *
 * The code is written against the 5.4 API. Lua 5.1, 5.2 and LuaJIT get the
 * 5.3 API from Debian's lua-compat53-dev (compat-5.3.h, its functions
 * compiled into each file that uses them as unused-tolerant statics); what
 * neither that nor 5.3 has is below, most of it in compat.c. */
#ifndef OPENAI_COMPAT_H
#define OPENAI_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 503
#include <compat-5.3.h>
#endif

/* Whether numbers have an integer subtype (5.3, 5.4). Without one, JSON
 * integers beyond 2^53 become exact boxed values (int64.h). */
#define OPENAI_INTEGER_SUBTYPE (LUA_VERSION_NUM >= 503)

/* Whether weak-keyed tables are ephemerons (5.2 on). Without, a value such
 * a table holds outlives its dead key by one collection cycle. */
#define OPENAI_EPHEMERONS (LUA_VERSION_NUM >= 502)

#if !OPENAI_INTEGER_SUBTYPE
/* 5.1's and LuaJIT's luaL_checkinteger truncate 1.5 to 1: refuse it, as 5.3
 * and 5.4 do ("number has no integer representation"). */
lua_Integer openai_checkinteger(lua_State *L, int arg);
#undef luaL_checkinteger
#undef luaL_optinteger
#define luaL_checkinteger openai_checkinteger
#define luaL_optinteger(L, arg, def) \
  (lua_isnoneornil((L), (arg)) ? (lua_Integer)(def) : openai_checkinteger((L), (arg)))
#endif

#if LUA_VERSION_NUM < 504
/* User values: 5.4 gives a userdata numbered slots; before, a userdata has
 * one user value (5.1: its environment, which must be a table), so the
 * slots live in a table there. nuv == 0 makes a plain userdata. */
void *openai_newuserdatauv(lua_State *L, size_t size, int nuv);
int openai_setiuservalue(lua_State *L, int idx, int n);
#define lua_newuserdatauv openai_newuserdatauv
#define lua_setiuservalue openai_setiuservalue
#define luaL_pushfail lua_pushnil
#endif

#ifndef LUA_GCISRUNNING /* PUC 5.1: the collector cannot be stopped for us to see */
#define OPENAI_GC_RUNNING(L) 1
#else
#define OPENAI_GC_RUNNING(L) lua_gc((L), LUA_GCISRUNNING, 0)
#endif

/* The main thread, or NULL when it is L itself or cannot be known (PUC 5.1
 * records it when the module is opened from it: openai_compat_open). */
lua_State *openai_main_thread(lua_State *L);
void openai_compat_open(lua_State *L);

/* The module is built with -fvisibility=hidden; only luaopen_* is exported. */
#if defined(__GNUC__)
#define OPENAI_EXPORT __attribute__((visibility("default")))
#else
#define OPENAI_EXPORT
#endif

/* Creates the metatable `name` (its __name, for error messages) of a class
 * of userdata: its metamethods, and __index the table of its methods. */
void openai_register_class(lua_State *L, const char *name, const luaL_Reg *metamethods, const luaL_Reg *methods);

/* Registry names of the metatables shared between C files. */
#define OPENAI_ARRAY_MT      "openai.array_mt"
#define OPENAI_CONNECTION_MT "openai.Connection"
#define OPENAI_STREAM_MT     "openai.Stream"
#define OPENAI_PENDING_MT    "openai.Pending"
#define OPENAI_LOOP_MT       "openai.Loop"
#define OPENAI_INT64_MT      "openai.int64"

/* JSON null is a light userdata NULL: equal to cjson.null and ngx.null. */
#define openai_pushnull(L) lua_pushlightuserdata((L), NULL)
#define openai_isnull(L, i) \
  (lua_type((L), (i)) == LUA_TLIGHTUSERDATA && lua_touserdata((L), (i)) == NULL)

#endif
