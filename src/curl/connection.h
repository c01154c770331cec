/* openai.Connection, the userdata of a client's libcurl transport: what the
 * transport's entry (http.c) registers. */
#ifndef OPENAI_CONNECTION_H
#define OPENAI_CONNECTION_H

#include "compat.h"

/* Registers the Connection class, with its own methods and those in `more`
 * (which other parts implement), and puts `connection` and `valid_proxy`
 * into the module table at the top of the stack. */
void openai_connection_register(lua_State *L, const luaL_Reg *more);

#endif
