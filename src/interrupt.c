#define _POSIX_C_SOURCE 200809L

#include "interrupt.h"

#include <time.h>

double openai_monotonic(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Registry key of the function interrupt_run calls: its address. */
static const char trigger_key = 0;

void interrupt_open(lua_State *L) {
  /* One instruction: a call, count or line hook fires when it runs. */
  if (luaL_loadstring(L, "return") != LUA_OK) lua_error(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &trigger_key);
}

void interrupt_watch_start(lua_State *L, struct interrupt_watch *w) {
  w->L = L;
  w->main = openai_main_thread(L);
  w->hook = lua_gethook(L);
  w->mask = lua_gethookmask(L);
  w->count = lua_gethookcount(L);
  w->main_hook = w->main ? lua_gethook(w->main) : NULL;
  w->main_mask = w->main ? lua_gethookmask(w->main) : 0;
  w->main_count = w->main ? lua_gethookcount(w->main) : 0;
}

static int changed(lua_State *L, lua_Hook hook, int mask, int count) {
  return lua_gethook(L) != hook || lua_gethookmask(L) != mask || lua_gethookcount(L) != count;
}

int interrupt_pending(const struct interrupt_watch *w) {
  if (changed(w->L, w->hook, w->mask, w->count)) return lua_gethook(w->L) != NULL;
  return w->main != NULL && changed(w->main, w->main_hook, w->main_mask, w->main_count) &&
         lua_gethook(w->main) != NULL;
}

int interrupt_run(struct interrupt_watch *w) {
  lua_State *L = w->L;
  int status, borrowed = 0;
  lua_Hook own = lua_gethook(L);
  int own_mask = lua_gethookmask(L), own_count = lua_gethookcount(L);
  if (!changed(L, w->hook, w->mask, w->count) && w->main != NULL) {
    /* The hook was set on the main thread while this coroutine waits: run
     * it here. An error it raises ends this call; the main thread still has
     * its own hook and stops as well when it runs again. */
    lua_sethook(L, lua_gethook(w->main), lua_gethookmask(w->main), lua_gethookcount(w->main));
    borrowed = 1;
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &trigger_key);
  status = lua_pcall(L, 0, 0, 0);
  if (borrowed) lua_sethook(L, own, own_mask, own_count);
  if (status == LUA_OK) interrupt_watch_start(L, w);
  return status;
}
