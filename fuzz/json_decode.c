/* libFuzzer target: bytes -> openai_json_decode.
 *
 * Properties: no crash, leak or undefined behaviour; on success exactly one
 * value is pushed and no message is written, every string and key in it is
 * strict UTF-8 and it holds no more values than the cap; on failure nothing
 * is pushed and the message is one non-empty NUL-terminated line that fits
 * the buffer, whatever its size. The depth limit, the value cap and the
 * message buffer size vary with the input's length, so small limits and
 * tiny buffers are exercised too. The input itself also checks
 * openai_utf8_char against an independent strict UTF-8 decoder, and a
 * document that is one number must decode to what strtod (or strtoll, for
 * an integer) makes of the same text, bit for bit; without an integer
 * subtype, one beyond 2^53 must be a box showing the text's digits. */
#include "fuzz_common.h" /* first: feature macros */

#include <errno.h>
#include <math.h>
#include <string.h>

#include "int64.h"
#include "codec/json.h"

static lua_State *L;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = fuzz_json_state();
  return 0;
}

/* Strict UTF-8 the long way, independent of openai_utf8_char: decode each
 * code point, then require its shortest form, no surrogate, <= U+10FFFF. */
static int strict_utf8(const unsigned char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned long cp;
    unsigned c = s[i];
    size_t n, k, shortest;
    if (c < 0x80) {
      i++;
      continue;
    }
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
    else return 0;
    if (len - i < n) return 0;
    for (k = 1; k < n; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    shortest = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (n != shortest || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
    i += n;
  }
  return 1;
}

static int shared_utf8(const unsigned char *s, size_t len) {
  size_t i = 0, n;
  while (i < len) {
    n = openai_utf8_char(s + i, len - i);
    if (n == 0) return 0;
    i += n;
  }
  return 1;
}

static void check_string(int idx) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (!strict_utf8((const unsigned char *)s, len)) fuzz_fail("decoded a string that is not strict UTF-8", NULL);
}

/* Counts the values of the decoded value at idx and checks its strings. */
static size_t walk(int idx, int depth) {
  size_t n = 1;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING) check_string(idx);
  if (lua_type(L, idx) != LUA_TTABLE) return 1;
  if (depth > OPENAI_JSON_MAX_DEPTH + 1) fuzz_fail("decoded deeper than any limit", NULL);
  if (!lua_checkstack(L, 4)) fuzz_fail("Lua stack", NULL);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING) check_string(-2);
    n += walk(-1, depth + 1);
    lua_pop(L, 1);
  }
  return n;
}

/* A document that is one number, against the C library (the fuzzer runs in
 * the C locale). */
static void check_number(const uint8_t *data, size_t size) {
  char text[512], *end;
  size_t from = 0, to = size;
  while (from < to && strchr(" \t\r\n", data[from])) from++;
  while (to > from && strchr(" \t\r\n", data[to - 1])) to--;
  if (to - from >= sizeof text) return;
  memcpy(text, data + from, to - from);
  text[to - from] = '\0';
#if OPENAI_INTEGER_SUBTYPE
  if (lua_isinteger(L, 1)) {
    long long expected;
    errno = 0;
    expected = strtoll(text, &end, 10);
    if (*end != '\0' || errno != 0 || expected != (long long)lua_tointeger(L, 1))
      fuzz_fail("an integer differs from strtoll", text);
    return;
  }
#else
  if (lua_type(L, 1) == LUA_TUSERDATA) { /* a box: its digits are the text's */
    size_t len;
    const char *digits = luaL_tolstring(L, 1, &len);
    int exact = strlen(text) == len && memcmp(text, digits, len) == 0;
    lua_pop(L, 1);
    if (!exact) fuzz_fail("a boxed integer differs from its text", text);
    return;
  }
  if (strpbrk(text, ".eE") == NULL) { /* an integer: a number only within 2^53 */
    int negative = text[0] == '-';
    unsigned long long magnitude;
    errno = 0;
    magnitude = strtoull(text + negative, &end, 10);
    if (errno == 0 && magnitude > INT64_EXACT_DOUBLE && (!negative || magnitude <= (unsigned long long)INT64_MAX + 1))
      fuzz_fail("an integer beyond 2^53 decoded to a number", text);
    if (errno == 0 && magnitude == 0 && (double)lua_tonumber(L, 1) == 0 && signbit((double)lua_tonumber(L, 1)))
      fuzz_fail("-0 decoded to -0.0, not 0", text);
    if (magnitude == 0) return;
  }
#endif
  {
    double expected = strtod(text, &end), got = (double)lua_tonumber(L, 1);
    if (*end != '\0' || memcmp(&expected, &got, sizeof got) != 0) fuzz_fail("a float differs from strtod", text);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[256];
  size_t errsize = sizeof err;
  int depth = OPENAI_JSON_MAX_DEPTH;
  size_t max_values = OPENAI_JSON_MAX_VALUES;
  int ok;

  if (strict_utf8(data, size) != shared_utf8(data, size))
    fuzz_fail("openai_utf8_char disagrees with the strict UTF-8 decoder", NULL);
  if (size % 7 == 3) depth = 1 + (int)(size % 11);
  if (size % 5 == 1) errsize = 1 + size % 9;
  if (size % 13 == 4) max_values = 1 + size % 17;
  memset(err, 'x', sizeof err);
  lua_settop(L, 0);
  ok = openai_json_decode(L, (const char *)data, size, depth, max_values, err, errsize);
  if (ok) {
    if (lua_gettop(L) != 1) fuzz_fail("success must push exactly one value", NULL);
    if (err[0] != '\0') fuzz_fail("success must leave the message empty", err);
    if (lua_type(L, 1) == LUA_TNONE || lua_type(L, 1) == LUA_TNIL) fuzz_fail("decoded a nil", NULL);
    if (walk(1, 0) > max_values) fuzz_fail("decoded more values than the cap", NULL);
    if (lua_type(L, 1) == LUA_TNUMBER || lua_type(L, 1) == LUA_TUSERDATA) check_number(data, size);
  } else {
    size_t len = strnlen(err, errsize);
    if (lua_gettop(L) != 0) fuzz_fail("failure must push nothing", NULL);
    if (len >= errsize) fuzz_fail("message not NUL-terminated inside its buffer", NULL);
    if (errsize > 1 && len == 0) fuzz_fail("empty failure message", NULL);
    if (memchr(err, '\n', len) != NULL) fuzz_fail("message spans lines", err);
    if (errsize == sizeof err && strncmp(err, "invalid JSON", 12) != 0 &&
        strncmp(err, "JSON nested too deeply", 22) != 0 && strncmp(err, "JSON has more than ", 19) != 0)
      fuzz_fail("unexpected kind of message", err);
  }
  lua_settop(L, 0);
  return 0;
}
