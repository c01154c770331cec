/* openai.SseDecoder: bytes in, complete events out.
 *
 * feed() runs sse.c's decoder over the bytes (a Lua string on the stack,
 * which stays put) with no Lua call inside: complete events go to an
 * event_queue in C memory, and next() hands them to Lua one at a time.
 * Ownership: the parser's buffers and the queued events are the userdata's
 * own, freed by close(), __gc and __close (one idempotent close); an event
 * being handed to Lua is unlinked first and owned by that call
 * (sse_push_event). */
#include "sse_decoder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

#define SSE_DECODER_MT "openai.SseDecoder"

enum decoder_state {
  DECODER_OPEN,
  DECODER_TOO_LARGE, /* an event went over the limit: it refuses all input since */
  DECODER_BROKEN,    /* memory ran out: input was lost, it refuses all input since */
  DECODER_CLOSED
};

struct sse_decoder {
  struct sse_parser parser;
  struct event_queue events; /* complete events, not read yet */
  size_t max_event_bytes;
  enum decoder_state state;
};

void sse_push_too_large(lua_State *L, size_t limit) {
  char digits[24]; /* lua_pushfstring has no format for a size_t before 5.3 */
  snprintf(digits, sizeof digits, "%llu", (unsigned long long)limit);
  lua_pushfstring(L, "a server-sent event exceeds the limit of %s bytes", digits);
}

/* Inside the protected call of sse_push_event. */
static int convert_event(lua_State *L) {
  const struct event *e = lua_touserdata(L, 1);
  int data_first = lua_toboolean(L, 2);
  size_t name_len = e->name_len == EVENT_NO_NAME ? 0 : e->name_len;
  if (data_first) lua_pushlstring(L, e->bytes + name_len, e->data_len);
  if (e->name_len == EVENT_NO_NAME)
    lua_pushnil(L);
  else
    lua_pushlstring(L, e->bytes, name_len);
  if (!data_first) lua_pushlstring(L, e->bytes + name_len, e->data_len);
  return 2;
}

int sse_push_event(lua_State *L, struct event *e, int data_first) {
  int status;
  lua_pushcfunction(L, convert_event);
  lua_pushlightuserdata(L, e);
  lua_pushboolean(L, data_first);
  status = lua_pcall(L, 2, 2, 0);
  free(e);
  if (status != LUA_OK) return lua_error(L);
  return 2;
}

static struct sse_decoder *check_decoder(lua_State *L) {
  return luaL_checkudata(L, 1, SSE_DECODER_MT);
}

/* sse_decoder([max_event_bytes]): the cap on one line and on one event's
 * name + data, as the transport's max_response_bytes is for its streams. */
int openai_sse_decoder_new(lua_State *L) {
  lua_Integer max = luaL_optinteger(L, 1, (lua_Integer)OPENAI_DEFAULT_MAX_RESPONSE_BYTES);
  struct sse_decoder *d;
  luaL_argcheck(L, max >= 1, 1, "max_event_bytes must be a positive integer");
  d = lua_newuserdatauv(L, sizeof *d, 0);
  memset(d, 0, sizeof *d);
  d->max_event_bytes = (size_t)max;
  sse_init(&d->parser, d->max_event_bytes);
  d->state = DECODER_OPEN;
  luaL_setmetatable(L, SSE_DECODER_MT);
  return 1;
}

/* close(), __gc and __close. */
static int decoder_close(lua_State *L) {
  struct sse_decoder *d = check_decoder(L);
  sse_free(&d->parser);
  event_queue_clear(&d->events);
  d->state = DECODER_CLOSED;
  return 0;
}

/* What feed() and finish() return once the decoder takes no input. */
static int refuse_input(lua_State *L, const struct sse_decoder *d) {
  if (d->state == DECODER_BROKEN) return luaL_error(L, "out of memory");
  lua_pushnil(L);
  if (d->state == DECODER_CLOSED) {
    lua_pushliteral(L, "closed");
    lua_pushliteral(L, "the decoder is closed");
  } else {
    lua_pushliteral(L, "too_large");
    sse_push_too_large(L, d->max_event_bytes);
  }
  return 3;
}

/* The parser has returned (it holds nothing of Lua): only now may a Lua
 * error be raised. A failed decoder frees its partial line and event but
 * keeps the events completed before, for next(). */
static int after_decoding(lua_State *L, struct sse_decoder *d, int status) {
  if (status == SSE_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  sse_free(&d->parser);
  /* SSE_STOPPED: the queue ran out of memory */
  d->state = status == SSE_TOO_LARGE ? DECODER_TOO_LARGE : DECODER_BROKEN;
  return refuse_input(L, d);
}

/* decoder:feed(bytes) -> true | nil, kind, message */
static int decoder_feed(lua_State *L) {
  struct sse_decoder *d = check_decoder(L);
  size_t n;
  const char *bytes = luaL_checklstring(L, 2, &n);
  if (d->state != DECODER_OPEN) return refuse_input(L, d);
  return after_decoding(L, d, sse_feed(&d->parser, bytes, n, event_queue_emit, &d->events));
}

/* decoder:finish() -> true | nil, kind, message: the end of the input
 * delivers an unterminated last line and the pending event. The decoder
 * can go on with another stream. */
static int decoder_finish(lua_State *L) {
  struct sse_decoder *d = check_decoder(L);
  if (d->state != DECODER_OPEN) return refuse_input(L, d);
  return after_decoding(L, d, sse_finish(&d->parser, event_queue_emit, &d->events));
}

/* decoder:next() -> data, name|nil | nil when no complete event waits */
static int decoder_next(lua_State *L) {
  struct sse_decoder *d = check_decoder(L);
  struct event *e;
  if (!lua_checkstack(L, 4)) return luaL_error(L, "stack overflow");
  e = event_queue_pop(&d->events);
  if (e == NULL) {
    lua_pushnil(L);
    return 1;
  }
  return sse_push_event(L, e, 1);
}

/* decoder:queued() -> bytes (names and data) of the events not read yet */
static int decoder_queued(lua_State *L) {
  struct sse_decoder *d = check_decoder(L);
  lua_pushinteger(L, (lua_Integer)d->events.bytes);
  return 1;
}

static int decoder_tostring(lua_State *L) {
  struct sse_decoder *d = check_decoder(L);
  lua_pushstring(L, d->state == DECODER_CLOSED ? "openai.SseDecoder (closed)" : "openai.SseDecoder (open)");
  return 1;
}

static const luaL_Reg decoder_methods[] = {
  {"feed", decoder_feed},
  {"finish", decoder_finish},
  {"next", decoder_next},
  {"queued", decoder_queued},
  {"close", decoder_close},
  {NULL, NULL}
};

static const luaL_Reg decoder_metamethods[] = {
  {"__gc", decoder_close},
  {"__close", decoder_close},
  {"__tostring", decoder_tostring},
  {"__index", NULL}, /* placeholder */
  {NULL, NULL}
};

void openai_sse_decoder_open(lua_State *L) {
  openai_register_class(L, SSE_DECODER_MT, decoder_metamethods, decoder_methods);
}
