/* The boxes of int64.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "int64.h"

/* The registry keys of the LuaJIT functions (see int64.h). */
static const char make_key = 0, digits_key = 0;

typedef struct Int64Box {
  uint64_t magnitude;
  int negative;
} Int64Box;

void openai_int64_push(lua_State *L, int negative, uint64_t magnitude) {
  Int64Box *box;
  luaL_checkstack(L, 4, "JSON integer");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &make_key);
  if (lua_isfunction(L, -1)) {
    lua_pushboolean(L, negative);
    lua_pushnumber(L, (lua_Number)(magnitude >> 32));
    lua_pushnumber(L, (lua_Number)(magnitude & 0xFFFFFFFFu));
    lua_call(L, 3, 1);
    return;
  }
  lua_pop(L, 1);
  box = (Int64Box *)lua_newuserdatauv(L, sizeof *box, 0);
  box->magnitude = magnitude;
  box->negative = negative;
  luaL_setmetatable(L, OPENAI_INT64_MT);
}

/* Reads "-?[0-9]+" within -2^63 .. 2^64-1. */
static int parse_digits(const char *s, size_t len, int *negative, uint64_t *magnitude) {
  const char *end = s + len;
  uint64_t m = 0;
  *negative = len > 0 && *s == '-';
  s += *negative;
  if (s == end) return 0;
  for (; s < end; s++) {
    unsigned digit = (unsigned)(*s - '0');
    if (digit > 9 || m > (UINT64_MAX - digit) / 10) return 0;
    m = m * 10 + digit;
  }
  if (*negative && m > (uint64_t)INT64_MAX + 1) return 0;
  *magnitude = m;
  return 1;
}

int openai_int64_get(lua_State *L, int idx, int *negative, uint64_t *magnitude) {
  Int64Box *box = (Int64Box *)luaL_testudata(L, idx, OPENAI_INT64_MT);
  if (box != NULL) {
    *negative = box->negative;
    *magnitude = box->magnitude;
    return 1;
  }
  if (lua_type(L, idx) <= LUA_TTHREAD) return 0; /* LuaJIT's cdata lie beyond */
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 2, "JSON integer");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &digits_key);
  if (!lua_isfunction(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
  {
    size_t len;
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    int ok = s != NULL && parse_digits(s, len, negative, magnitude);
    lua_pop(L, 1);
    return ok;
  }
}

int openai_int64_functions_lua(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &digits_key);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &make_key);
  return 0;
}

/* ---- the userdata box ----------------------------------------------------- */

static Int64Box *check_box(lua_State *L, int idx) {
  return (Int64Box *)luaL_checkudata(L, idx, OPENAI_INT64_MT);
}

/* Writes the decimal digits, '-' first when negative; returns the length. */
static size_t box_text(const Int64Box *box, char out[24]) {
  char digits[21];
  size_t n = 0, len = 0;
  uint64_t m = box->magnitude;
  do {
    digits[n++] = (char)('0' + (int)(m % 10));
    m /= 10;
  } while (m != 0);
  if (box->negative) out[len++] = '-';
  while (n > 0) out[len++] = digits[--n];
  return len;
}

static int box_tostring(lua_State *L) {
  char text[24];
  size_t len = box_text(check_box(L, 1), text);
  lua_pushlstring(L, text, len);
  return 1;
}

/* The magnitude compared with a non-negative double e: -1, 0 or 1. */
static int compare_magnitude(uint64_t m, double e) {
  double whole;
  uint64_t w;
  if (e >= 18446744073709551616.0) return -1; /* 2^64 */
  whole = floor(e);
  w = (uint64_t)whole;
  if (m != w) return m < w ? -1 : 1;
  return e > whole ? -1 : 0;
}

/* a compared with b, each a box or a number: -1, 0, 1, or 2 (NaN). */
static int compare(lua_State *L) {
  Int64Box *a = (Int64Box *)luaL_testudata(L, 1, OPENAI_INT64_MT);
  Int64Box *b = (Int64Box *)luaL_testudata(L, 2, OPENAI_INT64_MT);
  int flip = 1, order;
  double other;
  if (a != NULL && b != NULL) {
    if (a->negative != b->negative) return a->negative ? -1 : 1;
    if (a->magnitude == b->magnitude) return 0;
    order = a->magnitude < b->magnitude ? -1 : 1;
    return a->negative ? -order : order;
  }
  if (a == NULL) { /* the number is a: compare b with it, then flip */
    a = check_box(L, 2);
    other = luaL_checknumber(L, 1);
    flip = -1;
  } else {
    other = luaL_checknumber(L, 2);
  }
  if (other != other) return 2;
  if (a->negative != (other < 0)) order = a->negative ? -1 : 1;
  else order = a->negative ? -compare_magnitude(a->magnitude, -other) : compare_magnitude(a->magnitude, other);
  return flip * order;
}

static int box_eq(lua_State *L) {
  lua_pushboolean(L, compare(L) == 0);
  return 1;
}

static int box_lt(lua_State *L) {
  lua_pushboolean(L, compare(L) == -1);
  return 1;
}

static int box_le(lua_State *L) {
  int order = compare(L);
  lua_pushboolean(L, order == -1 || order == 0);
  return 1;
}

/* "seed: " .. box, as a number would concatenate. */
static int box_concat(lua_State *L) {
  int i;
  for (i = 1; i <= 2; i++) {
    Int64Box *box = (Int64Box *)luaL_testudata(L, i, OPENAI_INT64_MT);
    if (box != NULL) {
      char text[24];
      lua_pushlstring(L, text, box_text(box, text));
    } else if (lua_type(L, i) == LUA_TSTRING || lua_type(L, i) == LUA_TNUMBER) {
      lua_pushvalue(L, i);
    } else {
      return luaL_error(L, "attempt to concatenate a %s value", luaL_typename(L, i));
    }
  }
  lua_concat(L, 2);
  return 1;
}

static const luaL_Reg box_metamethods[] = {
  {"__tostring", box_tostring},
  {"__eq", box_eq},
  {"__lt", box_lt},
  {"__le", box_le},
  {"__concat", box_concat},
  {NULL, NULL}
};

void openai_int64_open(lua_State *L) {
  luaL_newmetatable(L, OPENAI_INT64_MT);
  luaL_setfuncs(L, box_metamethods, 0);
  lua_pop(L, 1);
}
