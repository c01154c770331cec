/* libFuzzer target: decode -> encode -> decode.
 *
 * When the input decodes, openai_json_encode_lua (run under lua_pcall, as
 * Lua would call it) must encode the value, the text must decode again to
 * a structurally equal value -- same types, same integer/float subtypes,
 * float bits identical (so -0.0 stays -0.0), strings byte for byte, arrays
 * (openai.array_mt) and objects kept apart -- and encoding that second value
 * must give the very same text (the encoder is canonical: sorted keys,
 * shortest round-tripping floats).
 *
 * Strings need no exception: the decoder only returns strict UTF-8 (a lone
 * surrogate escape fails the decode), and the encoder accepts exactly that
 * (both use openai_utf8_char).
 *
 * The one accepted encode failure: a number too large for a double decodes
 * to +-inf (as strtod gives it), which JSON cannot express, so the encoder
 * refuses it ("cannot encode NaN or infinity").
 *
 * Float text: the encoder writes most floats by exact arithmetic instead of
 * snprintf; every float of the decoded value, and the doubles whose bits
 * are the first 16 bytes of the input (with their neighbours), must get
 * byte for byte the text of the snprintf/strtod reference
 * (openai_json_float_reference). */
#include "fuzz_common.h" /* first: feature macros */

#include <math.h>
#include <string.h>

#include "codec/json.h"
#include "codec/json_float.h"

static lua_State *L;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = fuzz_json_state();
  return 0;
}

/* The encoder's float text against the snprintf reference. */
static void check_float_text(double v) {
  char got[OPENAI_FLOAT_TEXT], want[OPENAI_FLOAT_TEXT], why[3 * OPENAI_FLOAT_TEXT];
  size_t ngot, nwant;
  int fast;
  if (isnan(v) || isinf(v)) return;
  ngot = openai_json_float_text(v, got, &fast);
  nwant = openai_json_float_reference(v, want);
  if (ngot != nwant || memcmp(got, want, ngot) != 0) {
    snprintf(why, sizeof why, "%a: %.*s (%s) vs reference %.*s", v, (int)ngot, got,
             fast ? "fast path" : "snprintf", (int)nwant, want);
    fuzz_fail("float text differs from the reference", why);
  }
}

static int is_array(lua_State *S, int idx) {
  int result;
  if (!lua_getmetatable(S, idx)) return 0;
  luaL_getmetatable(S, OPENAI_ARRAY_MT);
  result = lua_rawequal(S, -1, -2);
  lua_pop(S, 2);
  return result;
}

static int contains_infinity(lua_State *S, int idx, int depth) {
  idx = lua_absindex(S, idx);
  if (lua_type(S, idx) == LUA_TNUMBER) return isinf(lua_tonumber(S, idx));
  if (lua_type(S, idx) != LUA_TTABLE || depth > OPENAI_JSON_MAX_DEPTH + 1) return 0;
  if (!lua_checkstack(S, 4)) fuzz_fail("Lua stack", NULL);
  lua_pushnil(S);
  while (lua_next(S, idx) != 0) {
    if (contains_infinity(S, -1, depth + 1)) {
      lua_pop(S, 2);
      return 1;
    }
    lua_pop(S, 1);
  }
  return 0;
}

/* Structural equality; writes where it differs into why. */
static int same(lua_State *S, int a, int b, int depth, char *why, size_t whysize) {
  int ta, tb;
  size_t na = 0, nb = 0;
  a = lua_absindex(S, a);
  b = lua_absindex(S, b);
  ta = lua_type(S, a);
  tb = lua_type(S, b);
  if (ta != tb) {
    snprintf(why, whysize, "type %s vs %s at depth %d", lua_typename(S, ta), lua_typename(S, tb), depth);
    return 0;
  }
  switch (ta) {
  case LUA_TNUMBER:
#if OPENAI_INTEGER_SUBTYPE
    if (lua_isinteger(S, a) != lua_isinteger(S, b)) {
      snprintf(why, whysize, "integer vs float at depth %d", depth);
      return 0;
    }
    if (lua_isinteger(S, a)) {
      if (lua_tointeger(S, a) == lua_tointeger(S, b)) return 1;
    } else
#endif
    {
      lua_Number x = lua_tonumber(S, a), y = lua_tonumber(S, b);
      check_float_text((double)x);
      if (memcmp(&x, &y, sizeof x) == 0) return 1;
    }
    snprintf(why, whysize, "number %.17g vs %.17g at depth %d", (double)lua_tonumber(S, a),
             (double)lua_tonumber(S, b), depth);
    return 0;
  case LUA_TSTRING: {
    size_t la, lb;
    const char *sa = lua_tolstring(S, a, &la), *sb = lua_tolstring(S, b, &lb);
    if (la == lb && memcmp(sa, sb, la) == 0) return 1;
    snprintf(why, whysize, "strings differ at depth %d", depth);
    return 0;
  }
  case LUA_TTABLE:
    break;
  case LUA_TUSERDATA: { /* boxed integers: the same digits */
    size_t la, lb;
    const char *sa = luaL_tolstring(S, a, &la), *sb = luaL_tolstring(S, b, &lb);
    int equal = la == lb && memcmp(sa, sb, la) == 0;
    lua_pop(S, 2);
    if (equal) return 1;
    snprintf(why, whysize, "boxed integers differ at depth %d", depth);
    return 0;
  }
  default: /* booleans, openai.null */
    if (lua_rawequal(S, a, b)) return 1;
    snprintf(why, whysize, "%s values differ at depth %d", lua_typename(S, ta), depth);
    return 0;
  }
  if (is_array(S, a) != is_array(S, b)) {
    snprintf(why, whysize, "array vs object at depth %d", depth);
    return 0;
  }
  if (!lua_checkstack(S, 6)) fuzz_fail("Lua stack", NULL);
  lua_pushnil(S);
  while (lua_next(S, a) != 0) {
    na++;
    lua_pushvalue(S, -2);
    lua_rawget(S, b);
    if (!same(S, -2, -1, depth + 1, why, whysize)) {
      lua_pop(S, 3);
      return 0;
    }
    lua_pop(S, 2);
  }
  lua_pushnil(S);
  while (lua_next(S, b) != 0) {
    nb++;
    lua_pop(S, 1);
  }
  if (na != nb) {
    snprintf(why, whysize, "%lu vs %lu members at depth %d", (unsigned long)na, (unsigned long)nb, depth);
    return 0;
  }
  return 1;
}

/* Encodes the value at idx under lua_pcall; pushes the text or the error.
 * Returns 1 on success. */
static int encode(lua_State *S, int idx) {
  idx = lua_absindex(S, idx);
  lua_pushcfunction(S, openai_json_encode_lua);
  lua_pushvalue(S, idx);
  return lua_pcall(S, 1, 1, 0) == LUA_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[256], why[160];
  const char *text1, *text2;
  size_t len1, len2, i;

  for (i = 0; i + 8 <= size && i < 16; i += 8) {
    double v;
    memcpy(&v, data + i, sizeof v);
    check_float_text(v);
    check_float_text(nextafter(v, 0));
    check_float_text(nextafter(v, HUGE_VAL));
  }
  lua_settop(L, 0);
  if (!openai_json_decode(L, (const char *)data, size, OPENAI_JSON_MAX_DEPTH,
                          OPENAI_JSON_MAX_VALUES, err, sizeof err)) return 0;
  /* 1: first value */
  if (!encode(L, 1)) {
    const char *msg = lua_tostring(L, -1);
    if (!(msg && strstr(msg, "cannot encode NaN or infinity") && contains_infinity(L, 1, 0)))
      fuzz_fail("encode(decode(s)) failed", msg);
    lua_settop(L, 0);
    return 0;
  }
  /* 2: its text */
  text1 = lua_tolstring(L, 2, &len1);
  if (!openai_json_decode(L, text1, len1, OPENAI_JSON_MAX_DEPTH, OPENAI_JSON_MAX_VALUES, err, sizeof err))
    fuzz_fail("the encoder's output does not decode", err);
  /* 3: second value */
  why[0] = '\0';
  if (!same(L, 1, 3, 0, why, sizeof why)) fuzz_fail("decode(encode(v)) differs from v", why);
  if (!encode(L, 3)) fuzz_fail("encoding the second value failed", lua_tostring(L, -1));
  /* 4: second text */
  text2 = lua_tolstring(L, 4, &len2);
  if (len1 != len2 || memcmp(text1, text2, len1) != 0) fuzz_fail("encode is not canonical", text2);
  lua_settop(L, 0);
  return 0;
}
