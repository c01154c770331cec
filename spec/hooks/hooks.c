/* A test helper for spec/hooks_spec.lua: what the standalone interpreter
 * does on Ctrl-C, with a hook of the spec's choosing. hooks.arm(seconds, fn)
 * starts a timer; its SIGALRM handler sets a hook on the main thread, and
 * the hook runs fn() once, at the next Lua call or instruction (which the
 * client's waits provide). Test code only: a signal handler can reach the
 * state only through a global. Builds for every runtime (make LUA=...
 * hooks-module): the Lua 5.1 API, and the main thread where the registry
 * keeps it (5.2+). */
#define _POSIX_C_SOURCE 200809L

#include <lauxlib.h>
#include <lua.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>

static lua_State *armed;
static char fn_key; /* its address is the registry key */

static void run_fn(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  lua_pushlightuserdata(L, &fn_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  lua_call(L, 0, 0);
}

static void on_alarm(int sig) {
  (void)sig;
  lua_sethook(armed, run_fn, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static int arm(lua_State *L) {
  lua_Number seconds = luaL_checknumber(L, 1);
  struct itimerval timer;
  struct sigaction action;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushlightuserdata(L, &fn_key);
  lua_pushvalue(L, 2);
  lua_rawset(L, LUA_REGISTRYINDEX);
#ifdef LUA_RIDX_MAINTHREAD
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  armed = lua_tothread(L, -1);
#else
  /* No main thread to find (5.1, LuaJIT): the thread that arms the hook,
   * which is the one that then waits. */
  armed = L;
#endif
  memset(&action, 0, sizeof action);
  action.sa_handler = on_alarm;
  sigemptyset(&action.sa_mask);
  sigaction(SIGALRM, &action, NULL);
  memset(&timer, 0, sizeof timer);
  timer.it_value.tv_sec = (time_t)seconds;
  timer.it_value.tv_usec = (suseconds_t)((seconds - (lua_Number)timer.it_value.tv_sec) * 1e6);
  setitimer(ITIMER_REAL, &timer, NULL);
  return 0;
}

int luaopen_hooks(lua_State *L);

int luaopen_hooks(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, arm);
  lua_setfield(L, -2, "arm");
  return 1;
}
