/* A test helper for spec/fork_spec.lua: fork(2) and what a parent needs to
 * wait for its child within a bounded time. Built for each runtime (make
 * fork-helper LUA=...): Debian's lua-posix has no build for Lua 5.4, and a
 * spec must run under every runtime the suite runs on. Only the plain C API
 * shared by Lua 5.1 to 5.4 and LuaJIT is used.
 *
 *   fork.fork()              -> pid (0 in the child)
 *   fork.wait(pid, seconds)  -> "exited", status | "signaled", signal
 *                             | nil, "timeout" (the child still runs)
 *   fork.kill(pid)           SIGKILL, then reaps it
 *   fork.exit(status)        _exit(2): no atexit handler, no lua_close
 *   fork.pid()               -> getpid() */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int push_errno(lua_State *L, const char *what) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, strerror(errno));
  return 2;
}

static int l_fork(lua_State *L) {
  pid_t pid;
  fflush(NULL); /* buffered output must not be written twice */
  pid = fork();
  if (pid < 0) return push_errno(L, "fork");
  lua_pushnumber(L, (lua_Number)pid);
  return 1;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int l_wait(lua_State *L) {
  pid_t pid = (pid_t)luaL_checknumber(L, 1);
  double deadline = now() + luaL_checknumber(L, 2);
  for (;;) {
    int status = 0;
    pid_t got = waitpid(pid, &status, WNOHANG);
    if (got < 0 && errno != EINTR) return push_errno(L, "waitpid");
    if (got == pid && WIFEXITED(status)) {
      lua_pushliteral(L, "exited");
      lua_pushnumber(L, (lua_Number)WEXITSTATUS(status));
      return 2;
    }
    if (got == pid && WIFSIGNALED(status)) {
      lua_pushliteral(L, "signaled");
      lua_pushnumber(L, (lua_Number)WTERMSIG(status));
      return 2;
    }
    if (now() >= deadline) {
      lua_pushnil(L);
      lua_pushliteral(L, "timeout");
      return 2;
    }
    {
      struct timespec slice = {0, 10 * 1000 * 1000};
      nanosleep(&slice, NULL);
    }
  }
}

static int l_kill(lua_State *L) {
  pid_t pid = (pid_t)luaL_checknumber(L, 1);
  int status;
  if (kill(pid, SIGKILL) != 0) return push_errno(L, "kill");
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_exit(lua_State *L) {
  int status = (int)luaL_optnumber(L, 1, 0);
  fflush(NULL);
  _exit(status);
  return 0;
}

static int l_pid(lua_State *L) {
  lua_pushnumber(L, (lua_Number)getpid());
  return 1;
}

int luaopen_fork(lua_State *L);

int luaopen_fork(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, l_fork);
  lua_setfield(L, -2, "fork");
  lua_pushcfunction(L, l_wait);
  lua_setfield(L, -2, "wait");
  lua_pushcfunction(L, l_kill);
  lua_setfield(L, -2, "kill");
  lua_pushcfunction(L, l_exit);
  lua_setfield(L, -2, "exit");
  lua_pushcfunction(L, l_pid);
  lua_setfield(L, -2, "pid");
  return 1;
}
