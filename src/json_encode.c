/* Lua values -> compact JSON text.
 *
 * The generator is our own rather than yajl_gen: yajl_gen keeps its state in
 * a fixed array of YAJL_MAX_DEPTH (128) levels, so it cannot write the
 * 1000-level documents the decoder accepts, and encode(decode(s)) must always
 * work. Strings and keys must be strict UTF-8 (openai_utf8_char, the check
 * the decoder applies too, so encode(decode(s)) still always works): no
 * overlong forms, surrogates, code points above U+10FFFF, truncated
 * sequences or stray continuation bytes. '/' is not escaped.
 *
 * Errors are raised with luaL_error from this walker only (no foreign frames
 * on the C stack). The output buffer starts on the C stack and grows into
 * Lua userdata kept in a stack slot, so nothing leaks when we raise.
 *
 * Mapping:
 *   nil (top level) and openai.null -> null; booleans; integers exactly;
 *   floats: the shortest of %.15g/%.16g/%.17g that reads back identical, with
 *   ".0" appended when the text would read back as an integer; NaN and
 *   infinities are errors;
 *   tables with the OPENAI_ARRAY_MT metatable -> arrays (keys 1..n only);
 *   other tables: empty -> {}, string keys -> object with keys sorted
 *   bytewise, keys exactly 1..n -> array; anything else is an error.
 *   Other metatables are ignored (raw access only).
 */
#include <float.h>
#include <langinfo.h> /* nl_langinfo is thread-safe; localeconv is not */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define OUT_LOCAL  1024
#define KEYS_LOCAL 64
#define PATH_SHOWN 16 /* path elements shown in error messages */

typedef struct KeyRef {
  const char *s;
  size_t len;
} KeyRef;

typedef struct Encoder {
  lua_State *L;
  int mt_slot;       /* array metatable (or nil) */
  int out_slot;      /* userdata holding the output once it outgrows out_local */
  int keys_slot;     /* userdata holding key lists once they outgrow keys_local */
  char *out;
  size_t len, cap;
  KeyRef *keys;      /* stack of key lists of the open objects */
  size_t nkeys, keys_cap;
  char point[8];     /* the locale's decimal point when it is not "." */
  size_t pointlen;
  char out_local[OUT_LOCAL];
  KeyRef keys_local[KEYS_LOCAL];
} Encoder;

/* One open table; the chain gives the ancestors (cycle check) and the path. */
typedef struct Frame {
  const struct Frame *up;
  const void *table;
  const char *key;   /* child being written: key of an object, or NULL */
  size_t keylen;
  lua_Integer index; /* ... or index in an array */
} Frame;

/* ---- errors -------------------------------------------------------------- */

static int is_identifier(const char *s, size_t len) {
  size_t i;
  if (len == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_'))
      return 0;
  }
  return 1;
}

/* Appends the path of f's current child, root first; only the last
 * PATH_SHOWN elements are written. pos counts from the innermost frame. */
static void add_path(luaL_Buffer *b, const Frame *f, int pos, int total) {
  if (f == NULL) return;
  add_path(b, f->up, pos + 1, total);
  if (pos >= PATH_SHOWN) {
    if (pos == PATH_SHOWN) luaL_addstring(b, "...");
    return;
  }
  if (f->key == NULL) {
    char num[32];
    snprintf(num, sizeof num, "[%lld]", (long long)f->index);
    luaL_addstring(b, num);
  } else if (is_identifier(f->key, f->keylen) && f->keylen <= 64) {
    if (pos != total - 1) luaL_addchar(b, '.');
    luaL_addlstring(b, f->key, f->keylen);
  } else {
    luaL_addstring(b, "[\"");
    luaL_addlstring(b, f->key, f->keylen > 64 ? 64 : f->keylen);
    luaL_addstring(b, f->keylen > 64 ? "...\"]" : "\"]");
  }
}

/* Raises "<reason>[ at <path>]" where the path leads to the value being
 * written (the child of f). */
static int encode_error(Encoder *e, const Frame *f, const char *reason) {
  lua_State *L = e->L;
  luaL_Buffer b;
  const Frame *g;
  int total = 0;
  for (g = f; g != NULL; g = g->up) total++;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, reason);
  if (f != NULL) {
    luaL_addstring(&b, " at ");
    add_path(&b, f, 0, total);
  }
  luaL_pushresult(&b);
  return lua_error(L);
}

/* ---- output -------------------------------------------------------------- */

static void grow(Encoder *e, size_t extra) {
  size_t cap = e->cap;
  char *p;
  if (extra > ((size_t)-1) / 2 - e->len) luaL_error(e->L, "JSON text too large");
  while (cap - e->len < extra) cap *= 2;
  p = (char *)lua_newuserdatauv(e->L, cap, 0);
  memcpy(p, e->out, e->len);
  lua_replace(e->L, e->out_slot);
  e->out = p;
  e->cap = cap;
}

#define reserve(e, n) \
  do { if ((e)->cap - (e)->len < (size_t)(n)) grow((e), (size_t)(n)); } while (0)

static void put_bytes(Encoder *e, const char *s, size_t n) {
  reserve(e, n);
  memcpy(e->out + e->len, s, n);
  e->len += n;
}

static void put_char(Encoder *e, char c) {
  reserve(e, 1);
  e->out[e->len++] = c;
}

/* Writes a JSON string; returns 0 (nothing sensible written) on bad UTF-8. */
static int put_string(Encoder *e, const char *str, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0, run = 0;
  put_char(e, '"');
  while (i < len) {
    unsigned char c = s[i];
    char esc[6];
    size_t n;
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0x80) {
      n = openai_utf8_char(s + i, len - i);
      if (n == 0) return 0;
      i += n;
      continue;
    }
    put_bytes(e, str + run, i - run);
    esc[0] = '\\';
    n = 2;
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    default:
      esc[1] = 'u';
      esc[2] = '0';
      esc[3] = '0';
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 0xF];
      n = 6;
      break;
    }
    put_bytes(e, esc, n);
    run = ++i;
  }
  put_bytes(e, str + run, len - run);
  put_char(e, '"');
  return 1;
}

static void put_integer(Encoder *e, lua_Integer v) {
  char buf[24];
  char *p = buf + sizeof buf;
  lua_Unsigned u = v < 0 ? (lua_Unsigned)0 - (lua_Unsigned)v : (lua_Unsigned)v;
  do {
    *--p = (char)('0' + (int)(u % 10));
    u /= 10;
  } while (u != 0);
  if (v < 0) *--p = '-';
  put_bytes(e, p, (size_t)(buf + sizeof buf - p));
}

static void put_float(Encoder *e, const Frame *f, lua_Number v) {
  char buf[64];
  int prec, n = 0;
  size_t i;
  int integral = 1;
  double d = (double)v;
  if (isnan(d) || isinf(d)) encode_error(e, f, "cannot encode NaN or infinity");
  /* snprintf and strtod both use the locale's decimal point; compare first,
   * then turn that point into '.'. */
  /* A normal double needs 15 to 17 digits, and %.15g already drops trailing
   * zeros; a subnormal one may need fewer (5e-324), so it starts at 1. */
  for (prec = (d != 0 && fabs(d) < DBL_MIN) ? 1 : 15; prec <= 17; prec++) {
    n = snprintf(buf, sizeof buf, "%.*g", prec, d);
    if (prec == 17 || strtod(buf, NULL) == d) break;
  }
  if (n <= 0 || (size_t)n >= sizeof buf - 2) {
    encode_error(e, f, "cannot format number");
    return;
  }
  if (e->pointlen > 0) {
    char *p = strstr(buf, e->point);
    if (p != NULL) {
      *p = '.';
      memmove(p + 1, p + e->pointlen, strlen(p + e->pointlen) + 1);
      n = (int)strlen(buf);
    }
  }
  for (i = 0; i < (size_t)n; i++) {
    if (buf[i] != '-' && (buf[i] < '0' || buf[i] > '9')) {
      integral = 0;
      break;
    }
  }
  if (integral) {
    buf[n++] = '.';
    buf[n++] = '0';
  }
  put_bytes(e, buf, (size_t)n);
}

/* ---- values -------------------------------------------------------------- */

static void encode_value(Encoder *e, int idx, const Frame *parent, int depth);

static int compare_keys(const void *a, const void *b) {
  const KeyRef *x = (const KeyRef *)a, *y = (const KeyRef *)b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, n);
  if (c != 0) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

static void keys_reserve(Encoder *e, size_t n) {
  size_t cap = e->keys_cap;
  KeyRef *p;
  if (e->keys_cap - e->nkeys >= n) return;
  if (n > ((size_t)-1) / (4 * sizeof(KeyRef)) - e->nkeys) luaL_error(e->L, "table too large");
  while (cap - e->nkeys < n) cap *= 2;
  p = (KeyRef *)lua_newuserdatauv(e->L, cap * sizeof(KeyRef), 0);
  memcpy(p, e->keys, e->nkeys * sizeof(KeyRef));
  lua_replace(e->L, e->keys_slot);
  e->keys = p;
  e->keys_cap = cap;
}

static void encode_object(Encoder *e, int idx, Frame *f, size_t nstr, int depth) {
  lua_State *L = e->L;
  size_t base = e->nkeys, i;
  keys_reserve(e, nstr);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    KeyRef *k = &e->keys[e->nkeys++];
    lua_pop(L, 1);
    k->s = lua_tolstring(L, -1, &k->len); /* all keys are strings here */
  }
  e->nkeys = base + nstr;
  qsort(e->keys + base, nstr, sizeof(KeyRef), compare_keys);
  put_char(e, '{');
  for (i = 0; i < nstr; i++) {
    /* e->keys may move when a nested object grows it: index, don't cache */
    const KeyRef k = e->keys[base + i];
    if (i > 0) put_char(e, ',');
    f->key = k.s;
    f->keylen = k.len;
    if (!put_string(e, k.s, k.len)) encode_error(e, f->up, "invalid UTF-8 in object key");
    put_char(e, ':');
    lua_pushlstring(L, k.s, k.len);
    lua_rawget(L, idx);
    encode_value(e, lua_gettop(L), f, depth);
    lua_pop(L, 1);
  }
  put_char(e, '}');
  e->nkeys = base;
}

static void encode_array(Encoder *e, int idx, Frame *f, lua_Integer n, int depth) {
  lua_State *L = e->L;
  lua_Integer i;
  put_char(e, '[');
  f->key = NULL;
  for (i = 1; i <= n; i++) {
    if (i > 1) put_char(e, ',');
    f->index = i;
    lua_rawgeti(L, idx, i);
    encode_value(e, lua_gettop(L), f, depth);
    lua_pop(L, 1);
  }
  put_char(e, ']');
}

static void bad_key(Encoder *e, const Frame *parent) {
  lua_State *L = e->L;
  lua_pushfstring(L, "object keys must be strings (got %s key)", luaL_typename(L, -1));
  encode_error(e, parent, lua_tostring(L, -1));
}

static void encode_table(Encoder *e, int idx, const Frame *parent, int depth) {
  lua_State *L = e->L;
  const void *self = lua_topointer(L, idx);
  const Frame *a;
  Frame f;
  int marked = 0;
  size_t nstr = 0;
  lua_Integer nint = 0, maxint = 0;
  int badint = 0;

  for (a = parent; a != NULL; a = a->up) {
    if (a->table == self) encode_error(e, parent, "cannot encode a table that contains itself");
  }
  if (depth > OPENAI_JSON_MAX_DEPTH) {
    lua_pushfstring(L, "cannot encode: nested too deeply (limit %d)", OPENAI_JSON_MAX_DEPTH);
    lua_error(L);
  }
  luaL_checkstack(L, 6, "JSON encode");
  if (lua_getmetatable(L, idx)) {
    marked = lua_rawequal(L, -1, e->mt_slot);
    lua_pop(L, 1);
  }

  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    switch (lua_type(L, -1)) {
    case LUA_TSTRING:
      nstr++;
      break;
    case LUA_TNUMBER:
      /* a float key is never integral: Lua 5.4 normalises those to integers */
      if (lua_isinteger(L, -1)) {
        lua_Integer k = lua_tointeger(L, -1);
        nint++;
        if (k < 1) badint = 1;
        else if (k > maxint) maxint = k;
        break;
      }
      bad_key(e, parent);
      break;
    default:
      bad_key(e, parent);
      break;
    }
  }

  f.up = parent;
  f.table = self;
  f.key = NULL;
  f.keylen = 0;
  f.index = 0;
  if (marked) {
    if (nstr > 0) encode_error(e, parent, "array (array_mt) has non-integer keys");
    if (badint || maxint != nint) encode_error(e, parent, "sparse array (keys must be exactly 1..n)");
    encode_array(e, idx, &f, nint, depth);
  } else if (nstr == 0 && nint == 0) {
    put_bytes(e, "{}", 2);
  } else if (nstr > 0 && nint > 0) {
    encode_error(e, parent, "table mixes array and object keys");
  } else if (nint > 0) {
    if (badint || maxint != nint) encode_error(e, parent, "sparse array (keys must be exactly 1..n)");
    encode_array(e, idx, &f, nint, depth);
  } else {
    encode_object(e, idx, &f, nstr, depth);
  }
}

static void cannot_encode(Encoder *e, int idx, const Frame *parent) {
  lua_pushfstring(e->L, "cannot encode %s", luaL_typename(e->L, idx));
  encode_error(e, parent, lua_tostring(e->L, -1));
}

static void encode_value(Encoder *e, int idx, const Frame *parent, int depth) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    put_bytes(e, "null", 4);
    break;
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, idx)) put_bytes(e, "true", 4);
    else put_bytes(e, "false", 5);
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) put_integer(e, lua_tointeger(L, idx));
    else put_float(e, parent, lua_tonumber(L, idx));
    break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (!put_string(e, s, len)) encode_error(e, parent, "invalid UTF-8 in string");
    break;
  }
  case LUA_TTABLE:
    encode_table(e, idx, parent, depth + 1);
    break;
  case LUA_TLIGHTUSERDATA:
    if (openai_isnull(L, idx)) put_bytes(e, "null", 4);
    else cannot_encode(e, idx, parent);
    break;
  default: /* function, full userdata, thread */
    cannot_encode(e, idx, parent);
    break;
  }
}

int openai_json_encode_lua(lua_State *L) {
  Encoder e;
  const char *dp;
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  luaL_checkstack(L, 8, "JSON encode");
  luaL_getmetatable(L, OPENAI_ARRAY_MT);
  lua_pushnil(L);
  lua_pushnil(L);
  e.L = L;
  e.mt_slot = 2;
  e.out_slot = 3;
  e.keys_slot = 4;
  e.out = e.out_local;
  e.len = 0;
  e.cap = OUT_LOCAL;
  e.keys = e.keys_local;
  e.nkeys = 0;
  e.keys_cap = KEYS_LOCAL;
  e.point[0] = '\0';
  e.pointlen = 0;
  dp = nl_langinfo(RADIXCHAR);
  if (dp != NULL && strcmp(dp, ".") != 0 && strlen(dp) < sizeof e.point) {
    e.pointlen = strlen(dp);
    memcpy(e.point, dp, e.pointlen + 1);
  }
  encode_value(&e, 1, NULL, 0);
  lua_pushlstring(L, e.out, e.len);
  return 1;
}
