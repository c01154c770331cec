/* What compat.h declares: the parts of the 5.4 C API older runtimes lack. */
#include <math.h>

#include "compat.h"

#if !OPENAI_INTEGER_SUBTYPE
lua_Integer openai_checkinteger(lua_State *L, int arg) {
  /* the bounds of a 64-bit lua_Integer, both exact as doubles */
  const lua_Number low = -9223372036854775808.0, high = 9223372036854775808.0;
  lua_Number n = luaL_checknumber(L, arg);
  if (!(n >= low && n < high) || n != floor(n))
    luaL_argerror(L, arg, "number has no integer representation");
  return (lua_Integer)n;
}
#endif

#if LUA_VERSION_NUM < 504
void *openai_newuserdatauv(lua_State *L, size_t size, int nuv) {
  void *p = lua_newuserdata(L, size);
  if (nuv > 0) {
    lua_createtable(L, nuv, 0);
    lua_setuservalue(L, -2);
  }
  return p;
}

/* Pops the value; returns 0 (as 5.4 does) when the userdata has no slots. */
int openai_setiuservalue(lua_State *L, int idx, int n) {
  idx = lua_absindex(L, idx);
  lua_getuservalue(L, idx);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 2);
    return 0;
  }
  lua_insert(L, -2);
  lua_rawseti(L, -2, n);
  lua_pop(L, 1);
  return 1;
}
#endif

#ifndef LUA_RIDX_MAINTHREAD
static const char main_thread_key = 0;
#endif

void openai_compat_open(lua_State *L) {
#ifndef LUA_RIDX_MAINTHREAD
  /* lua_pushthread tells whether L is the main thread: keep it if so. */
  if (lua_pushthread(L)) lua_rawsetp(L, LUA_REGISTRYINDEX, &main_thread_key);
  else lua_pop(L, 1);
#else
  (void)L;
#endif
}

lua_State *openai_main_thread(lua_State *L) {
  lua_State *main;
#ifdef LUA_RIDX_MAINTHREAD
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
#else
  lua_rawgetp(L, LUA_REGISTRYINDEX, &main_thread_key);
#endif
  main = lua_tothread(L, -1);
  lua_pop(L, 1);
  return main == L ? NULL : main;
}

void openai_register_class(lua_State *L, const char *name, const luaL_Reg *metamethods, const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, metamethods, 0);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
