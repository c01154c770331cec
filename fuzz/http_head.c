/* libFuzzer target: response heads (src/codec/http_head.c), the input being
 * the head.
 *
 * Strict reading (http_head_parse, core.http_head):
 * - refused: the message is one short line of printable ASCII, whatever
 *   the size of the buffer it is written to (even one byte), and
 *   core.http_head returns nil and the same message;
 * - accepted: the status is the three digits after "HTTP/1.x ", every
 *   header has a non-empty token name and a value with no blank at either
 *   end and no CR, LF or NUL, and there is one per line between the status
 *   line and the blank line. The head written again in a canonical form
 *   (CRLF, then LF only) is accepted with the same status and headers. The
 *   lenient reading of libcurl's blocks gives the same headers (unless a
 *   name starts with "HTTP/", which libcurl's blocks never have). The
 *   table of core.http_head holds exactly the lower-cased names, each with
 *   its values joined with ", " in order.
 * Lenient reading (the libcurl transport), of any input: no value has a
 * blank at an end, and the table and the single value of x-request-id
 * agree. */
#include "fuzz_common.h" /* first: feature macros */

#include <string.h>

#include "codec/http_head.h"

static lua_State *L;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = fuzz_lua_state();
  return 0;
}

/* A growable byte string. */
struct text {
  char *data;
  size_t len, cap;
};

static void text_add(struct text *t, const char *p, size_t n) {
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + n + 1) cap *= 2;
    t->data = realloc(t->data, cap);
    if (t->data == NULL) fuzz_fail("out of memory", NULL);
    t->cap = cap;
  }
  if (n > 0) memcpy(t->data + t->len, p, n);
  t->len += n;
  t->data[t->len] = '\0';
}

#define MAX_HEADERS 4096

struct headers {
  struct http_header h[MAX_HEADERS];
  size_t n;
};

/* Collects a cursor's headers; 0 when there are too many to keep. */
static int collect(struct http_head_cursor c, struct headers *out) {
  struct http_header h;
  out->n = 0;
  while (http_head_next(&c, &h)) {
    if (out->n == MAX_HEADERS) return 0;
    out->h[out->n++] = h;
  }
  return 1;
}

static int same_bytes(const char *a, size_t alen, const char *b, size_t blen) {
  return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static int same_headers(const struct headers *a, const struct headers *b) {
  size_t i;
  if (a->n != b->n) return 0;
  for (i = 0; i < a->n; i++)
    if (!same_bytes(a->h[i].name, a->h[i].name_len, b->h[i].name, b->h[i].name_len) ||
        !same_bytes(a->h[i].value, a->h[i].value_len, b->h[i].value, b->h[i].value_len))
      return 0;
  return 1;
}

static char lower(char c) {
  return (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
}

static int same_name(const struct http_header *a, const struct http_header *b) {
  size_t i;
  if (a->name_len != b->name_len) return 0;
  for (i = 0; i < a->name_len; i++)
    if (lower(a->name[i]) != lower(b->name[i])) return 0;
  return 1;
}

static int is_blank(char c) {
  return c == ' ' || c == '\t';
}

/* Lua: the lenient table and x-request-id of a block. */
static int lenient_lua(lua_State *S) {
  size_t len;
  const char *block = lua_tolstring(S, 1, &len);
  struct http_head_cursor c;
  http_head_lenient(&c, block, len);
  http_head_push_headers(S, &c);
  http_head_lenient(&c, block, len);
  http_head_push_value(S, &c, "x-request-id");
  return 2;
}

static void check_lenient(const char *block, size_t len) {
  struct http_head_cursor c;
  struct http_header h;
  http_head_lenient(&c, block, len);
  while (http_head_next(&c, &h))
    if (h.value_len > 0 && (is_blank(h.value[0]) || is_blank(h.value[h.value_len - 1])))
      fuzz_fail("a lenient value has a blank at an end", NULL);
  lua_settop(L, 0);
  lua_pushcfunction(L, lenient_lua);
  lua_pushlstring(L, block, len);
  if (lua_pcall(L, 1, 2, 0) != LUA_OK) fuzz_fail("lenient reading raised", lua_tostring(L, -1));
  lua_getfield(L, 1, "x-request-id");
  if (!lua_rawequal(L, -1, 2)) fuzz_fail("x-request-id differs from the table's", NULL);
  lua_settop(L, 0);
}

/* The table core.http_head returned (at idx) against the headers. */
static void check_table(int idx, const struct headers *hs) {
  size_t i, j, distinct = 0;
  struct text want = {NULL, 0, 0}, name = {NULL, 0, 0};
  for (i = 0; i < hs->n; i++) {
    const struct http_header *h = &hs->h[i];
    size_t got_len;
    const char *got;
    for (j = 0; j < i && !same_name(&hs->h[j], h); j++) {}
    if (j < i) continue; /* joined with its first */
    distinct++;
    want.len = 0;
    for (j = i; j < hs->n; j++) {
      if (!same_name(&hs->h[j], h)) continue;
      if (j > i) text_add(&want, ", ", 2);
      text_add(&want, hs->h[j].value, hs->h[j].value_len);
    }
    name.len = 0;
    for (j = 0; j < h->name_len; j++) {
      char c = lower(h->name[j]);
      text_add(&name, &c, 1);
    }
    lua_pushlstring(L, name.data, name.len);
    lua_rawget(L, idx);
    got = lua_tolstring(L, -1, &got_len);
    if (got == NULL || !same_bytes(got, got_len, want.data ? want.data : "", want.len))
      fuzz_fail("core.http_head's table differs from the header lines", NULL);
    lua_pop(L, 1);
  }
  free(want.data);
  free(name.data);
  lua_pushnil(L);
  for (i = 0; lua_next(L, idx) != 0; i++) lua_pop(L, 1);
  if (i != distinct) fuzz_fail("core.http_head's table has other names", NULL);
}

static void check_message(const char *err, size_t size) {
  size_t i, n = strnlen(err, size);
  if (n == size) fuzz_fail("the message is not NUL-terminated", NULL);
  if (size > 1 && n == 0) fuzz_fail("empty message", NULL);
  if (n > 60) fuzz_fail("message longer than 60 bytes", err);
  for (i = 0; i < n; i++)
    if (err[i] < 0x20 || err[i] > 0x7e) fuzz_fail("message with a byte that is not printable ASCII", NULL);
}

/* The accepted head written again: CRLF (or LF) line ends, one blank
 * after each colon, the blank line. */
static void rewrite(struct text *out, int status, const struct headers *hs, const char *eol) {
  char line[32];
  size_t i, eol_len = strlen(eol);
  snprintf(line, sizeof line, "HTTP/1.1 %03d Re-written", status);
  out->len = 0;
  text_add(out, line, strlen(line));
  text_add(out, eol, eol_len);
  for (i = 0; i < hs->n; i++) {
    text_add(out, hs->h[i].name, hs->h[i].name_len);
    text_add(out, ": ", 2);
    text_add(out, hs->h[i].value, hs->h[i].value_len);
    text_add(out, eol, eol_len);
  }
  text_add(out, eol, eol_len);
}

static struct headers first, again;

static void check_accepted(const char *block, size_t len, int status, struct http_head_cursor c) {
  static const char *const eols[] = {"\r\n", "\n"};
  struct text out = {NULL, 0, 0};
  size_t i, lines = 0, k;
  int http_prefix = 0, blank;
  if (status < 0 || status > 999 || status != (block[9] - '0') * 100 + (block[10] - '0') * 10 + (block[11] - '0'))
    fuzz_fail("status differs from the status line's digits", NULL);
  if (!collect(c, &first)) return;
  for (i = 0; i < first.n; i++) {
    const struct http_header *h = &first.h[i];
    if (h->name_len == 0) fuzz_fail("empty name", NULL);
    for (k = 0; k < h->name_len; k++)
      if (!http_token_char((unsigned char)h->name[k])) fuzz_fail("a name that is not a token", NULL);
    if (h->value_len > 0 && (is_blank(h->value[0]) || is_blank(h->value[h->value_len - 1])))
      fuzz_fail("a value with a blank at an end", NULL);
    for (k = 0; k < h->value_len; k++)
      if (h->value[k] == '\r' || h->value[k] == '\n' || h->value[k] == '\0') fuzz_fail("CR, LF or NUL in a value", NULL);
    if (h->name_len >= 5 && memcmp(h->name, "HTTP/", 5) == 0) http_prefix = 1;
  }
  /* every line of an accepted head ends in LF; the last is the blank
   * line when it is LF or CRLF alone */
  for (i = 0; i < len; i++) lines += block[i] == '\n';
  blank = block[len - 2] == '\n' || (block[len - 2] == '\r' && block[len - 3] == '\n');
  if (first.n != lines - 1 - blank) fuzz_fail("not one header per line", NULL);
  for (i = 0; i < 2; i++) {
    int status2 = -1;
    struct http_head_cursor c2;
    char err[96];
    rewrite(&out, status, &first, eols[i]);
    if (!http_head_parse(out.data, out.len, &status2, &c2, err, sizeof err))
      fuzz_fail("the head written again is refused", err);
    if (status2 != status || !collect(c2, &again) || !same_headers(&first, &again))
      fuzz_fail("the head written again reads differently", NULL);
  }
  free(out.data);
  if (!http_prefix) {
    struct http_head_cursor lenient;
    http_head_lenient(&lenient, block, len);
    if (!collect(lenient, &again) || !same_headers(&first, &again))
      fuzz_fail("the lenient reading of an accepted head differs", NULL);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *block = (const char *)data;
  struct http_head_cursor c;
  char err[96], tiny[16];
  int status = -1, accepted;
  accepted = http_head_parse(block, size, &status, &c, err, sizeof err);
  /* a message buffer of 0 to 15 bytes, by the input's length */
  {
    struct http_head_cursor c2;
    int status2 = -1;
    size_t small = size % sizeof tiny;
    memset(tiny, 'x', sizeof tiny);
    if (http_head_parse(block, size, &status2, &c2, small ? tiny : NULL, small) != accepted)
      fuzz_fail("the size of the message buffer changes the verdict", NULL);
    if (!accepted && small > 0) check_message(tiny, small);
  }
  if (accepted) {
    check_accepted(block, size, status, c);
  } else {
    check_message(err, sizeof err);
  }
  /* core.http_head agrees */
  lua_settop(L, 0);
  lua_pushcfunction(L, openai_http_head_lua);
  lua_pushlstring(L, block, size);
  if (lua_pcall(L, 1, 2, 0) != LUA_OK) fuzz_fail("core.http_head raised", lua_tostring(L, -1));
  if (accepted) {
    if (!lua_isinteger(L, 1) || lua_tointeger(L, 1) != status || !lua_istable(L, 2))
      fuzz_fail("core.http_head did not return the status and a table", NULL);
    if (first.n < MAX_HEADERS) check_table(2, &first);
  } else if (!lua_isnil(L, 1) || lua_type(L, 2) != LUA_TSTRING || strcmp(lua_tostring(L, 2), err) != 0) {
    fuzz_fail("core.http_head did not return nil and the message", NULL);
  }
  lua_settop(L, 0);
  check_lenient(block, size);
  return 0;
}
