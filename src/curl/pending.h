/* openai.Pending, a request started without waiting: what the transport's
 * entry (http.c) registers. */
#ifndef OPENAI_PENDING_H
#define OPENAI_PENDING_H

#include "compat.h"

/* conn:start(...), a method of the Connection class. */
int openai_pending_start(lua_State *L);
/* Registers the Pending class. */
void openai_pending_register(lua_State *L);

#endif
