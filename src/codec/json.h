/* JSON <-> Lua values. The rules are the README's "The JSON rules":
 * int64 exact, floats stay floats, JSON null is openai.null, arrays carry
 * the registry metatable OPENAI_ARRAY_MT. */
#ifndef OPENAI_JSON_H
#define OPENAI_JSON_H

#include <stddef.h>
#include "compat.h"

#define OPENAI_JSON_MAX_DEPTH 1000
/* Values (scalars, strings, arrays, objects; not keys) one decode may build.
 * An empty array or object costs ~80 bytes of Lua memory for 3 bytes of
 * "[]," (measured, Lua 5.4, x86-64), so without a cap a body of "[],[],..."
 * takes ~27 times its size; the cap bounds that near 0.7 GB. */
#define OPENAI_JSON_MAX_VALUES ((size_t)8 * 1024 * 1024)

/* Decodes text[0..len) and pushes the value. Returns 1 on success.
 * On invalid input returns 0, pushes nothing and writes a one-line reason
 * into err (always NUL-terminated). max_depth <= 0 and max_values == 0 mean
 * the defaults above; the decode stops at the first value beyond max_values.
 * Only memory errors raise (a Lua error through the decoder's own frames,
 * which hold nothing that would leak). The text must stay where it is and
 * unchanged meanwhile, whatever Lua code runs: a Lua string on the stack, or
 * a buffer no Lua code can reach. */
int openai_json_decode(lua_State *L, const char *text, size_t len, int max_depth,
                       size_t max_values, char *err, size_t errsize);

/* Lua: json_decode(text [, max_depth [, max_values]]) -> value | nil, message */
int openai_json_decode_lua(lua_State *L);

/* Lua: json_encode(value) -> string; raises on values JSON cannot hold. */
int openai_json_encode_lua(lua_State *L);

/* Length of the UTF-8 character at s[0..avail), avail >= 1, or 0 when it is
 * not valid in the strict sense of RFC 3629 (Unicode table 3-7): no overlong
 * forms, no surrogates (ED A0..BF), nothing above U+10FFFF, no truncated
 * sequence or stray continuation byte. Shared by the decoder and encoder so
 * that both accept exactly the same strings. */
static inline size_t openai_utf8_char(const unsigned char *s, size_t avail) {
  unsigned c = s[0], lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */
  size_t n, k;
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;       /* continuation byte, or overlong C0/C1 */
  if (c < 0xE0) {
    n = 2;
  } else if (c < 0xF0) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;   /* overlong */
    else if (c == 0xED) hi = 0x9F; /* surrogates */
  } else if (c < 0xF5) {
    n = 4;
    if (c == 0xF0) lo = 0x90;   /* overlong */
    else if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
  } else {
    return 0;
  }
  if (avail < n || s[1] < lo || s[1] > hi) return 0;
  for (k = 2; k < n; k++) {
    if ((s[k] & 0xC0) != 0x80) return 0;
  }
  return n;
}

/* Registry key (a light userdata) of the array metatable, besides its name. */
extern const void *const openai_array_mt_key;

/* Creates the metatables the codec needs (called once from luaopen). */
void openai_json_open(lua_State *L);

#endif
