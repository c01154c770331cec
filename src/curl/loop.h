/* openai.Loop, one epoll set per Lua state that drives the transfers
 * started without waiting: what the transport's entry (http.c) registers. */
#ifndef OPENAI_LOOP_H
#define OPENAI_LOOP_H

#include "compat.h"

/* Registers the Loop class and puts `loop` into the module table at the
 * top of the stack. */
void openai_loop_register(lua_State *L);

#endif
