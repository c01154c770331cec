/* Server-sent events as Lua values: the openai.SseDecoder object, which
 * gives Lua code that reads a stream itself (a transport on nginx
 * cosockets) the rules of sse.c, and what it shares with the libcurl
 * transport's Stream: handing a queued event to Lua, and the message of an
 * event over the limit. */
#ifndef OPENAI_SSE_DECODER_H
#define OPENAI_SSE_DECODER_H

#include <stddef.h>

#include "compat.h"
#include "event_queue.h"

/* Lua: sse_decoder([max_event_bytes]) -> decoder */
int openai_sse_decoder_new(lua_State *L);

/* Creates the decoder's metatable (once, from luaopen). */
void openai_sse_decoder_open(lua_State *L);

/* Pushes an event unlinked from its queue as two Lua strings, name (nil
 * when it had none) then data, or with data_first data then name. They are
 * made inside a protected call and e is freed whether or not that failed:
 * a finalizer that runs meanwhile cannot reach it, and a memory error
 * cannot leak it (rule 4 of curl/transfer.h); then the call's error, if
 * any, is raised. The caller makes room for 4 values on the stack before
 * unlinking e, so that a stack overflow loses no event. Returns 2. */
int sse_push_event(lua_State *L, struct event *e, int data_first);

/* Pushes "a server-sent event exceeds the limit of N bytes". */
void sse_push_too_large(lua_State *L, size_t limit);

#endif
