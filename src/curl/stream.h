/* openai.Stream, pulled server-sent events: what the transport's entry
 * (http.c) registers. */
#ifndef OPENAI_STREAM_H
#define OPENAI_STREAM_H

#include "compat.h"

/* conn:stream(...), a method of the Connection class. */
int openai_stream_open(lua_State *L);
/* conn:stream_start(...), a method of the Connection class. */
int openai_stream_start(lua_State *L);
/* Registers the Stream class. */
void openai_stream_register(lua_State *L);

#endif
