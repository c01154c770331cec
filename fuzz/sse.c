/* libFuzzer target: the SSE decoder (src/codec/sse.c) fed in pieces.
 *
 * Input layout: byte 0 holds flags (bits 0-2: number of cuts, bit 3: a
 * small max_event_bytes taken from byte 1, bit 4: feed one byte at a time),
 * then two bytes per cut (a position), then the SSE text itself.
 *
 * The text is decoded twice, once in one piece and once cut at those
 * positions (or byte by byte); the two event lists, and how decoding ended
 * (ok, too large), must be identical. Every event must respect the limit
 * (name + data <= max_event_bytes) and hold no CR, and no LF in its name.
 *
 * The Lua decoder object (core.sse_decoder, src/codec/sse_decoder.c) fed
 * the same pieces must give the same events and end the same way: a
 * failure with the transport's message, and every later feed or finish
 * failing alike. */
#include "fuzz_common.h" /* first: feature macros */

#include <string.h>

#include "codec/sse.h"
#include "codec/sse_decoder.h"

static lua_State *L;

struct record {
  char *data;
  size_t len, cap;
  size_t events;
  size_t limit;
};

static void record_add(struct record *r, const void *p, size_t n) {
  if (r->len + n > r->cap) {
    size_t cap = r->cap ? r->cap : 256;
    while (cap < r->len + n) cap *= 2;
    r->data = realloc(r->data, cap);
    if (r->data == NULL) fuzz_fail("out of memory", NULL);
    r->cap = cap;
  }
  memcpy(r->data + r->len, p, n);
  r->len += n;
}

static int on_event(void *ud, const char *event, size_t event_len, const char *data, size_t data_len) {
  struct record *r = ud;
  char has = event != NULL;
  if (event == NULL && event_len != 0) fuzz_fail("no event name but a name length", NULL);
  if (event_len + data_len > r->limit) fuzz_fail("event larger than max_event_bytes", NULL);
  if (event_len > 0 && (memchr(event, '\r', event_len) || memchr(event, '\n', event_len)))
    fuzz_fail("CR or LF in an event name", NULL);
  if (data_len > 0 && memchr(data, '\r', data_len)) fuzz_fail("CR in event data", NULL);
  r->events++;
  record_add(r, &has, 1);
  record_add(r, &event_len, sizeof event_len);
  if (event_len > 0) record_add(r, event, event_len);
  record_add(r, &data_len, sizeof data_len);
  if (data_len > 0) record_add(r, data, data_len);
  return 1;
}

/* Decodes text cut at the given sorted positions; returns the final status. */
static int decode(const char *text, size_t len, const size_t *cuts, size_t ncuts, int bytewise, size_t limit,
                  struct record *r) {
  struct sse_parser p;
  size_t at = 0, i;
  int status = SSE_OK;
  r->limit = limit;
  sse_init(&p, limit);
  if (bytewise) {
    for (at = 0; at < len && status == SSE_OK; at++) status = sse_feed(&p, text + at, 1, on_event, r);
  } else {
    for (i = 0; i <= ncuts && status == SSE_OK; i++) {
      size_t end = i < ncuts ? cuts[i] : len;
      status = sse_feed(&p, text + at, end - at, on_event, r);
      at = end;
    }
  }
  if (status == SSE_OK) status = sse_finish(&p, on_event, r);
  sse_free(&p);
  /* the parser can be used again after sse_free + sse_init */
  return status;
}

static int compare_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

/* decoder:method(bytes) on the decoder at index 1: SSE_OK or SSE_TOO_LARGE
 * (after checking the message). */
static int call_decoder(const char *method, const char *bytes, size_t n, size_t limit) {
  char want[96];
  int status;
  lua_settop(L, 1);
  lua_getfield(L, 1, method);
  lua_pushvalue(L, 1);
  if (bytes != NULL) lua_pushlstring(L, bytes, n);
  if (lua_pcall(L, bytes != NULL ? 2 : 1, 3, 0) != LUA_OK) fuzz_fail("the decoder raised", lua_tostring(L, -1));
  if (lua_toboolean(L, 2)) return SSE_OK;
  snprintf(want, sizeof want, "a server-sent event exceeds the limit of %lu bytes", (unsigned long)limit);
  status = lua_isnil(L, 2) && lua_type(L, 3) == LUA_TSTRING && strcmp(lua_tostring(L, 3), "too_large") == 0 &&
           lua_type(L, 4) == LUA_TSTRING && strcmp(lua_tostring(L, 4), want) == 0;
  if (!status) fuzz_fail("the decoder failed otherwise than nil, \"too_large\", the message", NULL);
  return SSE_TOO_LARGE;
}

/* The same through core.sse_decoder; the events go to r. */
static int decode_lua(const char *text, size_t len, const size_t *cuts, size_t ncuts, int bytewise, size_t limit,
                      struct record *r) {
  size_t at = 0, i;
  int status = SSE_OK;
  r->limit = limit;
  lua_settop(L, 0);
  lua_pushcfunction(L, openai_sse_decoder_new);
  lua_pushinteger(L, (lua_Integer)limit);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) fuzz_fail("core.sse_decoder raised", lua_tostring(L, -1));
  if (bytewise) {
    for (at = 0; at < len && status == SSE_OK; at++) status = call_decoder("feed", text + at, 1, limit);
  } else {
    for (i = 0; i <= ncuts && status == SSE_OK; i++) {
      size_t end = i < ncuts ? cuts[i] : len;
      status = call_decoder("feed", text + at, end - at, limit);
      at = end;
    }
  }
  if (status == SSE_OK) status = call_decoder("finish", NULL, 0, limit);
  if (status != SSE_OK && (call_decoder("feed", "data: x\n\n", 10, limit) != status ||
                           call_decoder("finish", NULL, 0, limit) != status))
    fuzz_fail("a failed decoder takes input again", NULL);
  for (;;) {
    size_t data_len, name_len = 0;
    const char *event_data, *name;
    lua_settop(L, 1);
    lua_getfield(L, 1, "next");
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 1, 2, 0) != LUA_OK) fuzz_fail("decoder:next raised", lua_tostring(L, -1));
    if (lua_isnil(L, 2)) break;
    event_data = lua_tolstring(L, 2, &data_len);
    name = lua_tolstring(L, 3, &name_len);
    on_event(r, name, name_len, event_data, data_len);
  }
  lua_getfield(L, 1, "queued");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  if (lua_tointeger(L, -1) != 0) fuzz_fail("bytes queued after the last event", NULL);
  lua_settop(L, 1);
  lua_getfield(L, 1, "close");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  lua_settop(L, 0);
  return status;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = fuzz_lua_state();
  openai_sse_decoder_open(L);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fuzz_reader in = {data, size};
  struct record whole = {NULL, 0, 0, 0, 0}, pieces = {NULL, 0, 0, 0, 0}, lua = {NULL, 0, 0, 0, 0};
  unsigned flags = fuzz_byte(&in);
  size_t ncuts = flags & 7u, cuts[8], i, len, limit = (size_t)1 << 20;
  unsigned raw[8];
  int bytewise = (flags & 16u) != 0, s1, s2;
  const char *text;

  if (flags & 8u) limit = fuzz_byte(&in) % 64;
  for (i = 0; i < ncuts; i++) {
    raw[i] = fuzz_byte(&in);
    raw[i] = raw[i] << 8 | fuzz_byte(&in);
  }
  text = fuzz_bytes(&in, in.left, &len);
  for (i = 0; i < ncuts; i++) cuts[i] = len ? raw[i] % (len + 1) : 0;
  qsort(cuts, ncuts, sizeof cuts[0], compare_size);

  s1 = decode(text, len, NULL, 0, 0, limit, &whole);
  s2 = decode(text, len, cuts, ncuts, bytewise, limit, &pieces);
  if (s1 != SSE_OK && s1 != SSE_TOO_LARGE) fuzz_fail("unexpected status in one piece", NULL);
  if (s1 != s2) {
    char why[96];
    snprintf(why, sizeof why, "status %d in one piece, %d in pieces (limit %lu)", s1, s2, (unsigned long)limit);
    fuzz_fail("cutting the input changes how decoding ends", why);
  }
  if (whole.events != pieces.events || whole.len != pieces.len ||
      (whole.len > 0 && memcmp(whole.data, pieces.data, whole.len) != 0))
    fuzz_fail("cutting the input changes the events", NULL);
  if (limit > 0) { /* core.sse_decoder takes a positive limit only */
    if (decode_lua(text, len, cuts, ncuts, bytewise, limit, &lua) != s2)
      fuzz_fail("core.sse_decoder ends otherwise", NULL);
    if (lua.events != pieces.events || lua.len != pieces.len ||
        (lua.len > 0 && memcmp(lua.data, pieces.data, lua.len) != 0))
      fuzz_fail("core.sse_decoder gives other events", NULL);
  }
  free(lua.data);
  free(whole.data);
  free(pieces.data);
  return 0;
}
