/* JSON text -> Lua values, built directly from yajl's event callbacks.
 *
 * Rules (the README's "The JSON rules"):
 *   - numbers: no '.', 'e' or 'E' and fits int64 -> integer, else float
 *     (never clamped: 9223372036854775808 is a float); parsed from the raw
 *     text (yajl_number), locale-independent;
 *   - null -> light userdata NULL (openai.null), the key stays present;
 *   - arrays -> 1-based tables with the registry metatable OPENAI_ARRAY_MT;
 *     objects -> plain tables, the last duplicate key wins;
 *   - strings keep embedded NULs; yajl decodes escapes and checks raw bytes
 *     for UTF-8 structure only (a lead byte and its continuation bytes), so
 *     every string and key it hands us is checked again, strictly
 *     (openai_utf8_char: no overlong forms, surrogates or code points above
 *     U+10FFFF): "invalid JSON: invalid UTF-8 in string at byte N";
 *   - at most max_values values (keys do not count): "JSON has more than N
 *     values", and nothing more is built once the cap is passed.
 *
 * yajl's escape decoding has quirks (Debian's yajl 2.1.0, measured):
 *   - a lone high surrogate ("\ud800x") becomes "?" ("?x");
 *   - a high surrogate followed by any other \u escape is combined with it, even when
 *     that escape is not a low surrogate: "\ud800\u0041" gives the
 *     well-formed but wrong F0 90 81 81 (U+10041);
 *   - a lone low surrogate ("\udc00") becomes the 3 bytes ED B0 80, an
 *     encoded surrogate: the strict check rejects it, so such a string fails
 *     the decode (as in serde_json) instead of returning invalid UTF-8.
 * The first two give valid UTF-8 and are kept. The spec pins all three down
 * so a yajl change is noticed. yajl also takes \v and \f as whitespace
 * between tokens, which strict JSON does not.
 *
 * No Lua error may unwind through yajl's frames. Every callback that may
 * allocate does its work in one lua_pcall of decode_step (a light C function,
 * arguments copied with lua_pushvalue into space reserved by lua_checkstack),
 * and on failure records the message and returns 0 so that yajl stops.
 *
 * Stack layout while parsing (base = top on entry):
 *   base+1  array metatable
 *   base+2  the top-level value once known
 *   then per open container, two slots: the table, and either the pending
 *   key (object; nil before the first key) or the next index (array).
 */
#include <errno.h>
#include <limits.h>
#include <langinfo.h> /* nl_langinfo is thread-safe; localeconv is not */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "json.h"

enum { OP_SCALAR, OP_STRING, OP_KEY, OP_ARRAY, OP_OBJECT };
enum { V_NULL, V_FALSE, V_TRUE, V_INT, V_FLOAT };

#define SLOT_MT     1
#define SLOT_RESULT 2

typedef struct Decoder {
  lua_State *L;
  int base;            /* stack top on entry */
  int depth;           /* open containers */
  int max_depth;
  size_t values;       /* values built so far */
  size_t max_values;
  int bad_utf8;        /* stopped on a string that is not valid UTF-8 */
  /* operands of decode_step */
  int op;
  int vtype;
  lua_Integer ival;
  lua_Number fval;
  const char *str;
  size_t len;
  /* the locale's decimal point when it is not ".", else "" */
  char point[8];
  size_t pointlen;
  char *err;
  size_t errsize;
} Decoder;

static int fail(Decoder *d, const char *msg) {
  snprintf(d->err, d->errsize, "%s", msg);
  return 0;
}

/* The protected part of every value callback: creates the value and stores it
 * in the parent container. Arguments: 1 Decoder*, 2 parent table or nil,
 * 3 key or index (ignored when 2 is nil), 4 array metatable.
 * Returns the new value. Only memory errors can be raised here. */
static int decode_step(lua_State *L) {
  Decoder *d = (Decoder *)lua_touserdata(L, 1);
  switch (d->op) {
  case OP_SCALAR:
    switch (d->vtype) {
    case V_NULL: openai_pushnull(L); break;
    case V_FALSE: lua_pushboolean(L, 0); break;
    case V_TRUE: lua_pushboolean(L, 1); break;
    case V_INT: lua_pushinteger(L, d->ival); break;
    default: lua_pushnumber(L, d->fval); break;
    }
    break;
  case OP_STRING:
    lua_pushlstring(L, d->str, d->len);
    break;
  case OP_KEY:
    lua_pushlstring(L, d->str, d->len);
    return 1;
  case OP_ARRAY:
    lua_createtable(L, 0, 0);
    lua_pushvalue(L, 4);
    lua_setmetatable(L, -2);
    break;
  default:
    lua_createtable(L, 0, 0);
    break;
  }
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushvalue(L, -1);
    if (lua_isinteger(L, 3)) {
      lua_rawseti(L, 2, lua_tointeger(L, 3));
    } else {
      lua_pushvalue(L, 3);
      lua_insert(L, -2);
      lua_rawset(L, 2);
    }
  }
  return 1;
}

/* Runs decode_step for d->op and updates the container slots.
 * Returns 1 to let yajl continue, 0 to stop it (message in d->err). */
static int step(Decoder *d, int op) {
  lua_State *L = d->L;
  int top = lua_gettop(L);
  int in_array;
  /* checked before building: nothing beyond the cap is ever allocated */
  if (op != OP_KEY && ++d->values > d->max_values) {
    snprintf(d->err, d->errsize, "JSON has more than %zu values", d->max_values);
    return 0;
  }
  /* 5 for the call, 2 for a new container's slots, 1 spare */
  if (!lua_checkstack(L, 8)) return fail(d, "JSON nested too deeply (Lua stack exhausted)");
  in_array = d->depth > 0 && lua_type(L, top) == LUA_TNUMBER;
  lua_pushcfunction(L, decode_step);
  lua_pushlightuserdata(L, d);
  if (d->depth > 0 && op != OP_KEY) {
    lua_pushvalue(L, top - 1);
    lua_pushvalue(L, top);
  } else {
    lua_pushnil(L);
    lua_pushnil(L);
  }
  lua_pushvalue(L, d->base + SLOT_MT);
  d->op = op;
  if (lua_pcall(L, 4, 1, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    snprintf(d->err, d->errsize, "cannot decode JSON: %s", msg ? msg : "error");
    lua_settop(L, top);
    return 0;
  }
  if (op == OP_KEY) {
    lua_replace(L, top);
    return 1;
  }
  if (in_array) {
    lua_pushinteger(L, lua_tointeger(L, top) + 1);
    lua_replace(L, top);
  }
  if (d->depth == 0) {
    lua_pushvalue(L, -1);
    lua_replace(L, d->base + SLOT_RESULT);
  }
  if (op == OP_ARRAY) {
    lua_pushinteger(L, 1);
    d->depth++;
  } else if (op == OP_OBJECT) {
    lua_pushnil(L);
    d->depth++;
  } else {
    lua_pop(L, 1);
  }
  return 1;
}

/* Integer syntax: optional '-', digits only; fits int64. Exact, no clamping:
 * returns 0 (caller falls back to a float) on overflow or other syntax. */
static int parse_integer(const char *s, size_t len, lua_Integer *out) {
  size_t i = 0;
  int neg = 0;
  lua_Unsigned u = 0, limit;
  if (len > 0 && s[0] == '-') {
    neg = 1;
    i = 1;
  }
  if (i == len) return 0;
  limit = (lua_Unsigned)LUA_MAXINTEGER + (lua_Unsigned)neg;
  for (; i < len; i++) {
    unsigned digit;
    if (s[i] < '0' || s[i] > '9') return 0;
    digit = (unsigned)(s[i] - '0');
    if (u > (limit - digit) / 10) return 0; /* would overflow int64 */
    u = u * 10 + digit;
  }
  if (!neg) *out = (lua_Integer)u;
  else if (u == (lua_Unsigned)LUA_MAXINTEGER + 1) *out = LUA_MININTEGER;
  else *out = -(lua_Integer)u;
  return 1;
}

/* strtod on a NUL-terminated copy, with '.' replaced by the locale's decimal
 * point (strtod honours LC_NUMERIC). Overflow gives +-HUGE_VAL (inf), and
 * underflow a denormal or zero, as strtod does. */
static int parse_float(Decoder *d, const char *s, size_t len, lua_Number *out) {
  char local[128];
  char *buf = local, *end;
  size_t need = len + d->pointlen + 1, i, j = 0;
  int ok;
  if (need > sizeof local) {
    buf = (char *)malloc(need);
    if (buf == NULL) return fail(d, "cannot decode JSON: not enough memory");
  }
  for (i = 0; i < len; i++) {
    if (s[i] == '.' && d->pointlen > 0) {
      memcpy(buf + j, d->point, d->pointlen);
      j += d->pointlen;
    } else {
      buf[j++] = s[i];
    }
  }
  buf[j] = '\0';
  *out = (lua_Number)strtod(buf, &end);
  ok = (end == buf + j);
  if (buf != local) free(buf);
  if (!ok) return fail(d, "invalid JSON: bad number");
  return 1;
}

static int on_null(void *ctx) {
  Decoder *d = (Decoder *)ctx;
  d->vtype = V_NULL;
  return step(d, OP_SCALAR);
}

static int on_boolean(void *ctx, int b) {
  Decoder *d = (Decoder *)ctx;
  d->vtype = b ? V_TRUE : V_FALSE;
  return step(d, OP_SCALAR);
}

static int on_number(void *ctx, const char *s, size_t len) {
  Decoder *d = (Decoder *)ctx;
  if (parse_integer(s, len, &d->ival)) {
    d->vtype = V_INT;
  } else {
    if (!parse_float(d, s, len, &d->fval)) return 0;
    d->vtype = V_FLOAT;
  }
  return step(d, OP_SCALAR);
}

#define HIGH_BITS UINT64_C(0x8080808080808080)

/* Strict UTF-8 (openai_utf8_char) of a string as yajl hands it over, escapes
 * decoded. API text is mostly ASCII, so ASCII is told a word at a time,
 * never byte by byte: 8-byte words, the last one overlapping what was
 * already checked; the byte loop only ever walks up to the next non-ASCII
 * byte, which is then checked in full. */
static int utf8_valid_words(const unsigned char *s, size_t len) {
  size_t i = 0, n;
  uint64_t w;
  for (;;) {
    while (len - i >= 8) {
      memcpy(&w, s + i, sizeof w);
      if (w & HIGH_BITS) break;
      i += 8;
    }
    if (len - i < 8 && len >= 8) {
      memcpy(&w, s + len - 8, sizeof w);
      if ((w & HIGH_BITS) == 0) return 1;
    }
    while (i < len && s[i] < 0x80) i++;
    if (i == len) return 1;
    n = openai_utf8_char(s + i, len - i);
    if (n == 0) return 0;
    i += n;
  }
}

/* Most strings are short keys: an ASCII one of up to 7 bytes is told by two
 * overlapping 4-byte loads (or three byte probes), without a loop. */
static int utf8_valid(const unsigned char *s, size_t len) {
  if (len < 8) {
    uint32_t h, t;
    if (len >= 4) {
      memcpy(&h, s, sizeof h);
      memcpy(&t, s + len - 4, sizeof t);
      h |= t;
    } else {
      h = len > 0 ? (uint32_t)(s[0] | s[len / 2] | s[len - 1]) : 0;
    }
    if ((h & 0x80808080u) == 0) return 1;
  }
  return utf8_valid_words(s, len);
}

static int on_string(void *ctx, const unsigned char *s, size_t len) {
  Decoder *d = (Decoder *)ctx;
  if (!utf8_valid(s, len)) {
    d->bad_utf8 = 1; /* the message needs yajl's offset: written on return */
    return 0;
  }
  d->str = (const char *)s;
  d->len = len;
  return step(d, OP_STRING);
}

static int on_key(void *ctx, const unsigned char *s, size_t len) {
  Decoder *d = (Decoder *)ctx;
  if (!utf8_valid(s, len)) {
    d->bad_utf8 = 1;
    return 0;
  }
  d->str = (const char *)s;
  d->len = len;
  return step(d, OP_KEY);
}

static int open_container(Decoder *d, int op) {
  if (d->depth >= d->max_depth) {
    snprintf(d->err, d->errsize, "JSON nested too deeply (limit %d)", d->max_depth);
    return 0;
  }
  return step(d, op);
}

static int on_start_map(void *ctx) {
  return open_container((Decoder *)ctx, OP_OBJECT);
}

static int on_start_array(void *ctx) {
  return open_container((Decoder *)ctx, OP_ARRAY);
}

static int on_end(void *ctx) {
  Decoder *d = (Decoder *)ctx;
  lua_pop(d->L, 2);
  d->depth--;
  return 1;
}

static const yajl_callbacks decode_callbacks = {
  on_null,
  on_boolean,
  NULL, /* yajl_integer: unused, yajl_number gets the raw text */
  NULL, /* yajl_double */
  on_number,
  on_string,
  on_start_map,
  on_key,
  on_end,
  on_start_array,
  on_end
};

static int only_whitespace(const char *s, size_t len) {
  size_t i;
  for (i = 0; i < len; i++) {
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return 0;
  }
  return 1;
}

/* "invalid JSON: <yajl's reason> at byte N", one line. */
static void yajl_failure(Decoder *d, yajl_handle h, const char *text, size_t len,
                         size_t offset) {
  unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *)text, len);
  const char *reason = msg ? (const char *)msg : "parse error";
  const char *colon = strstr(reason, "error: ");
  size_t n;
  if (colon != NULL) reason = colon + 7;
  n = strcspn(reason, "\r\n");
  while (n > 0 && (reason[n - 1] == '.' || reason[n - 1] == ' ')) n--;
  snprintf(d->err, d->errsize, "invalid JSON: %.*s at byte %lu", (int)n, reason,
           (unsigned long)offset);
  if (msg != NULL) yajl_free_error(h, msg);
}

int openai_json_decode(lua_State *L, const char *text, size_t len, int max_depth,
                       size_t max_values, char *err, size_t errsize) {
  Decoder d;
  yajl_handle h;
  yajl_status st;
  const char *dp;
  char spare[1];
  int complete = 0;

  if (err == NULL || errsize == 0) {
    err = spare;
    errsize = sizeof spare;
  }
  err[0] = '\0';
  memset(&d, 0, sizeof d);
  d.L = L;
  d.base = lua_gettop(L);
  d.max_depth = max_depth > 0 ? max_depth : OPENAI_JSON_MAX_DEPTH;
  d.max_values = max_values > 0 ? max_values : OPENAI_JSON_MAX_VALUES;
  d.err = err;
  d.errsize = errsize;
  dp = nl_langinfo(RADIXCHAR);
  if (dp != NULL && strcmp(dp, ".") != 0 && strlen(dp) < sizeof d.point) {
    d.pointlen = strlen(dp);
    memcpy(d.point, dp, d.pointlen + 1);
  }

  if (only_whitespace(text, len)) {
    fail(&d, "invalid JSON: empty input");
    return 0;
  }

  /* Everything that may raise happens before yajl_alloc. */
  luaL_checkstack(L, 16, "JSON decode");
  luaL_getmetatable(L, OPENAI_ARRAY_MT); /* SLOT_MT */
  lua_pushnil(L);                        /* SLOT_RESULT */

  h = yajl_alloc(&decode_callbacks, NULL, &d);
  if (h == NULL) {
    lua_settop(L, d.base);
    fail(&d, "cannot decode JSON: not enough memory");
    return 0;
  }
  st = yajl_parse(h, (const unsigned char *)text, len);
  if (st == yajl_status_ok) {
    complete = 1;
    st = yajl_complete_parse(h);
  }
  if (st != yajl_status_ok) {
    /* after yajl_complete_parse the input ended too early: offset = len */
    size_t offset = complete ? len : yajl_get_bytes_consumed(h);
    if (st != yajl_status_client_canceled) {
      yajl_failure(&d, h, text, len, offset);
    } else if (d.bad_utf8) {
      /* yajl's offset, here just past the string's closing quote */
      snprintf(err, errsize, "invalid JSON: invalid UTF-8 in string at byte %lu",
               (unsigned long)offset);
    }
    yajl_free(h);
    lua_settop(L, d.base);
    return 0;
  }
  yajl_free(h);
  lua_settop(L, d.base + SLOT_RESULT);
  lua_remove(L, d.base + SLOT_MT);
  return 1;
}

int openai_json_decode_lua(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  lua_Integer max_depth = luaL_optinteger(L, 2, OPENAI_JSON_MAX_DEPTH);
  lua_Integer max_values = luaL_optinteger(L, 3, (lua_Integer)OPENAI_JSON_MAX_VALUES);
  char err[256];
  luaL_argcheck(L, max_depth >= 1 && max_depth <= INT_MAX, 2,
                "max_depth must be a positive integer");
  luaL_argcheck(L, max_values >= 1, 3, "max_values must be a positive integer");
#if LUA_MAXINTEGER > SIZE_MAX
  if ((lua_Unsigned)max_values > SIZE_MAX) max_values = (lua_Integer)SIZE_MAX; /* no cap */
#endif
  if (openai_json_decode(L, text, len, (int)max_depth, (size_t)max_values, err, sizeof err))
    return 1;
  luaL_pushfail(L);
  lua_pushstring(L, err);
  return 2;
}

void openai_json_open(lua_State *L) {
  luaL_newmetatable(L, OPENAI_ARRAY_MT);
  lua_pop(L, 1);
}
