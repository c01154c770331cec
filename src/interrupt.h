/* Letting the host interrupt a blocking wait.
 *
 * The standalone interpreter (lua.c, luajit.c) handles Ctrl-C by setting a
 * debug hook from its SIGINT handler; the hook raises "interrupted!" at the
 * next Lua instruction. A C function waiting on the network runs no Lua
 * instruction, so the hook would wait for the whole call. Waits here are cut
 * into short slices; after each one, a hook set since the wait began (on
 * this thread, or on the main thread when this is a coroutine) is run by
 * calling a one-instruction Lua function in protected mode. A hook that
 * returns normally (a profiler, a debugger) lets the wait go on. */
#ifndef OPENAI_INTERRUPT_H
#define OPENAI_INTERRUPT_H

#include "compat.h"

/* Longest single wait, in milliseconds: the delay before Ctrl-C is seen. */
#define INTERRUPT_SLICE_MS 100

/* Monotonic seconds from an arbitrary start: the clock the slices, the
 * timeouts and core.monotonic() measure with. */
double openai_monotonic(void);

struct interrupt_watch {
  lua_State *L;
  lua_State *main; /* the main thread, or NULL when L is it */
  lua_Hook hook, main_hook;
  int mask, main_mask;
  int count, main_count;
};

/* Stores the function interrupt_run calls (once, from luaopen). */
void interrupt_open(lua_State *L);

void interrupt_watch_start(lua_State *L, struct interrupt_watch *w);

/* Whether a hook was set since the watch started. No Lua code runs. */
int interrupt_pending(const struct interrupt_watch *w);

/* Runs the pending hook, then watches anew. Returns LUA_OK when it did not
 * raise, else the error status with the error object on the stack. Any
 * Lua code may run meanwhile: callers hold nothing a finalizer could free. */
int interrupt_run(struct interrupt_watch *w);

#endif
