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
 * on the C stack; qsort's comparison never raises). The output buffer starts
 * on the C stack and grows into Lua userdata kept in a stack slot, so nothing
 * leaks when we raise.
 *
 * Speed: each table is walked once with lua_next, which classifies the keys
 * (its errors come before any of its values' errors), collects the string
 * keys for sorting and leaves the first KEEP_MAX key/value pairs on the Lua
 * stack, so most values are written from there rather than looked up again.
 * Strings are scanned 8 bytes at a time and copied in runs. Most floats get
 * snprintf's text by exact arithmetic, without snprintf (float_fast).
 *
 * Mapping:
 *   nil (top level) and openai.null -> null; booleans; integers exactly
 *   (without an integer subtype: whole numbers within 2^53, and the exact
 *   boxes of int64.h);
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "int64.h"
#include "json.h"
#include "json_float.h"

#define OUT_LOCAL  1024
#define KEYS_LOCAL 64
#define PATH_SHOWN 16 /* path elements shown in error messages */
/* A table's key/value pairs stay on the Lua stack from the pass over its
 * keys, up to KEEP_MAX of them (the values of the others are looked up
 * again), so the stack grows by at most 2 * KEEP_MAX + 6 slots per level of
 * nesting, 134 000 at 1000 levels: within Lua's limit of 1 000 000. */
#define KEEP_MAX   64
#define KEEP_CHUNK 16
#define SORT_SMALL 32 /* insertion sort up to this many keys, qsort beyond */

/* encode_table stays out of encode_value, which then stays small for the
 * scalars that most values are. */
#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

typedef struct KeyRef {
  const char *s;
  size_t len;
  int slot;          /* stack slot of the value, or 0: look it up */
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

/* 1 for the bytes a string copies as they are: printable ASCII but '"' and
 * '\\'. Control characters are escaped, bytes from 0x80 checked as UTF-8. */
static const unsigned char plain_byte[256] = {
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
  1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20 '"' */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x30 */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50 '\\' */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x70 */
  /* 0x80..0xFF: 0 */
};

#define ONES  UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Nonzero when one of the 8 bytes in w is not a plain_byte (a byte below
 * 0x20, '"', '\\' or from 0x80 on). Exact per word, whatever the byte order:
 * each term has a high bit set only if some byte qualifies. */
static inline uint64_t word_needs_work(uint64_t w) {
  uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
  return (((w - ONES * 0x20) & ~w) | ((q - ONES) & ~q) | ((b - ONES) & ~b) | w) & HIGHS;
}

/* Writes a JSON string; returns 0 (and writes nothing) on bad UTF-8.
 * Runs of plain bytes are found 8 bytes at a time and copied whole; the
 * room for the rest of the string is reserved once, and again after each
 * escape (which may take 6 bytes for 1). */
static int put_string(Encoder *e, const char *str, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)str, *end = s + len, *run = s;
  size_t start = e->len;
  char *o;
  reserve(e, len + 2);
  o = e->out + e->len;
  *o++ = '"';
  for (;;) {
    unsigned char c;
    while (end - s >= 8) {
      uint64_t w;
      memcpy(&w, s, sizeof w);
      if (word_needs_work(w)) break;
      s += 8;
    }
    while (s < end && plain_byte[*s]) s++;
    if (s == end) break;
    c = *s;
    if (c >= 0x80) {
      size_t n = openai_utf8_char(s, (size_t)(end - s));
      if (n == 0) {
        e->len = start;
        return 0;
      }
      s += n;
      continue;
    }
    memcpy(o, run, (size_t)(s - run));
    o += s - run;
    e->len = (size_t)(o - e->out);
    reserve(e, (size_t)(end - s) + 6); /* this escape, the rest, the quote */
    o = e->out + e->len;
    *o++ = '\\';
    switch (c) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '\b': *o++ = 'b'; break;
    case '\f': *o++ = 'f'; break;
    case '\n': *o++ = 'n'; break;
    case '\r': *o++ = 'r'; break;
    case '\t': *o++ = 't'; break;
    default:
      o[0] = 'u';
      o[1] = '0';
      o[2] = '0';
      o[3] = hex[c >> 4];
      o[4] = hex[c & 0xF];
      o += 5;
      break;
    }
    run = ++s;
  }
  memcpy(o, run, (size_t)(end - run));
  o += end - run;
  *o++ = '"';
  e->len = (size_t)(o - e->out);
  return 1;
}

static const char digit_pairs[] =
  "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
  "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
  "8081828384858687888990919293949596979899";

/* Writes u in decimal so that it ends just before end; returns its start. */
static char *decimal_digits(char *end, uint64_t u) {
  while (u >= 100) {
    unsigned r = (unsigned)(u % 100);
    u /= 100;
    end -= 2;
    memcpy(end, digit_pairs + 2 * r, 2);
  }
  if (u >= 10) {
    end -= 2;
    memcpy(end, digit_pairs + 2 * u, 2);
  } else {
    *--end = (char)('0' + (int)u);
  }
  return end;
}

/* Writes -magnitude or magnitude. */
static void put_integer(Encoder *e, int negative, uint64_t magnitude) {
  uint64_t t = magnitude;
  size_t n = (size_t)(negative != 0) + 1;
  char *o;
  while (t >= 10) {
    t /= 10;
    n++;
  }
  reserve(e, n);
  o = e->out + e->len;
  if (negative) *o = '-';
  decimal_digits(o + n, magnitude);
  e->len += n;
}

/* ---- floats -------------------------------------------------------------- */

/* The rule: the first of %.15g, %.16g, %.17g that reads back as v (a
 * subnormal starts from %.1g), ".0" added when the text has only digits.
 *
 * Fast path, exact arithmetic only. With E = floor(log10 |v|) and
 * s = 14 - E, m = round(|v| * 10^s) has 15 digits. When 0 <= |s| <= 22,
 * 10^|s| is a double exactly and m < 2^53 is too, so m / 10^s (or m * 10^-s)
 * is the correctly rounded value of the decimal m*10^-s: it equals |v| just
 * when that decimal reads back as v. A decimal of at most 15 significant
 * digits that reads back as v is the one %.15g writes: the interval that
 * reads back as v is at most one ulp wide, 2^-52 |v| < 2.3 * 10^(E-15), and
 * two such decimals are at least 10^(E-14) apart (10^(E-15) when one is
 * below 10^E, but then |v| is within an ulp of 10^E, and the ulp below
 * 2.3 * 10^(E-16)). And when %.15g reads back, m is that decimal:
 * |v|*10^s is within 0.12 of it, the product's rounding adds at most 1/16,
 * so rounding to the nearest integer finds it. So a passing check gives
 * %.15g's digits, written here as %g writes them (trailing zeros dropped,
 * exponent form when the exponent X < -4 or X >= 15, two exponent digits at
 * least); a failing one proves %.15g does not read back, and snprintf starts
 * at %.16g. fuzz/json_roundtrip.c and spec/json_spec.lua check this against
 * the snprintf rule. */

static const double pow10_exact[23] = {
  1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* The doubles nearest to 10^-10 .. 10^38, for E: |v| >= pow10_near[E + 10]
 * except for the one double nearest to 10^E when that is below 10^E,
 * which the check still passes (m = 10^14 gives it back). */
static const double pow10_near[49] = {
  1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1,
  1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,
  1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
  1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29,
  1e30, 1e31, 1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38,
};

#define FAST_EMIN (-8) /* s = 14 - E <= 22 */
#define FAST_EMAX 36   /* s >= -22 */

/* Writes v's text into buf (>= 32 bytes) and returns its length, or returns
 * 0 when the fast path does not apply; then *min_prec is the first
 * precision snprintf needs to try. v is finite. */
static size_t float_fast(double v, char *buf, int *min_prec) {
  double a = fabs(v), x, p;
  uint64_t bits, m;
  int e2, t, E, s, nd, X, i;
  char digits[24], *d, *o = buf;

  *min_prec = 15;
  if (signbit(v)) *o++ = '-';
  if (a == 0) {
    memcpy(o, "0.0", 3);
    return (size_t)(o - buf) + 3;
  }
  memcpy(&bits, &a, sizeof bits);
  e2 = (int)(bits >> 52) - 1023; /* |v| in [2^e2, 2^(e2+1)) */
  if (e2 < -31 || e2 > 123) return 0;
  t = e2 * 78913; /* floor(e2 * log10(2)), E or E - 1 */
  E = t >= 0 ? t >> 18 : -((-t + (1 << 18) - 1) >> 18);
  if (a >= pow10_near[E + 11]) E++;
  else if (a < pow10_near[E + 10]) E--;
  if (E < FAST_EMIN || E > FAST_EMAX) return 0;
  s = 14 - E;
  if (s >= 0) {
    p = pow10_exact[s];
    x = a * p;
  } else {
    p = pow10_exact[-s];
    x = a / p;
  }
  m = (uint64_t)(x + 0.5); /* x < 2^50: x + 0.5 is exact */
  if (m > UINT64_C(1000000000000000)) return 0;
  if (s >= 0 ? (double)m / p != a : (double)m * p != a) {
    *min_prec = 16;
    return 0;
  }
  /* drop trailing zeros (m <= 10^15 has at most 15 of them) */
  if (m % 100000000 == 0) m /= 100000000, s -= 8;
  if (m % 10000 == 0) m /= 10000, s -= 4;
  if (m % 100 == 0) m /= 100, s -= 2;
  if (m % 10 == 0) m /= 10, s -= 1;
  d = decimal_digits(digits + sizeof digits, m);
  nd = (int)(digits + sizeof digits - d);
  X = nd - 1 - s; /* the decimal exponent %g sees */
  if (X >= -4 && X < 15) {
    if (X < 0) {
      *o++ = '0';
      *o++ = '.';
      for (i = -1; i > X; i--) *o++ = '0';
      memcpy(o, d, (size_t)nd);
      o += nd;
    } else if (nd <= X + 1) {
      memcpy(o, d, (size_t)nd);
      o += nd;
      for (i = nd; i <= X; i++) *o++ = '0';
      *o++ = '.';
      *o++ = '0';
    } else {
      memcpy(o, d, (size_t)X + 1);
      o += X + 1;
      *o++ = '.';
      memcpy(o, d + X + 1, (size_t)(nd - X - 1));
      o += nd - X - 1;
    }
  } else {
    *o++ = d[0];
    if (nd > 1) {
      *o++ = '.';
      memcpy(o, d + 1, (size_t)nd - 1);
      o += nd - 1;
    }
    *o++ = 'e';
    *o++ = X < 0 ? '-' : '+';
    if (X < 0) X = -X;
    *o++ = (char)('0' + X / 10); /* here |X| < 100 */
    *o++ = (char)('0' + X % 10);
  }
  return (size_t)(o - buf);
}

/* By snprintf and strtod from precision prec on; point is the locale's
 * decimal point when it is not "." (else pointlen is 0). Returns 0 when
 * the text does not fit. */
static size_t float_printf(double d, char *buf, int prec, const char *point, size_t pointlen) {
  int n = 0;
  size_t i;
  int integral = 1;
  /* snprintf and strtod both use the locale's decimal point; compare first,
   * then turn that point into '.'. */
  for (; prec <= 17; prec++) {
    n = snprintf(buf, OPENAI_FLOAT_TEXT, "%.*g", prec, d);
    if (prec == 17 || strtod(buf, NULL) == d) break;
  }
  if (n <= 0 || (size_t)n >= OPENAI_FLOAT_TEXT - 2) return 0;
  if (pointlen > 0) {
    char *p = strstr(buf, point);
    if (p != NULL) {
      *p = '.';
      memmove(p + 1, p + pointlen, strlen(p + pointlen) + 1);
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
  return (size_t)n;
}

/* A normal double needs 15 to 17 digits, and %.15g already drops trailing
 * zeros; a subnormal one may need fewer (5e-324), so it starts at 1. */
static int first_precision(double d) {
  return (d != 0 && fabs(d) < DBL_MIN) ? 1 : 15;
}

static size_t float_text(double d, char *buf, const char *point, size_t pointlen, int *fast) {
  int prec;
  size_t n = float_fast(d, buf, &prec);
  *fast = n != 0;
  if (n != 0) return n;
  if (prec == 15) prec = first_precision(d);
  return float_printf(d, buf, prec, point, pointlen);
}

size_t openai_json_float_text(double v, char *buf, int *fast) {
  return float_text(v, buf, "", 0, fast);
}

size_t openai_json_float_reference(double v, char *buf) {
  return float_printf(v, buf, first_precision(v), "", 0);
}

static void put_float(Encoder *e, const Frame *f, lua_Number v) {
  double d = (double)v;
  size_t n;
  int fast;
  if (isnan(d) || isinf(d)) encode_error(e, f, "cannot encode NaN or infinity");
  reserve(e, OPENAI_FLOAT_TEXT);
  n = float_text(d, e->out + e->len, e->point, e->pointlen, &fast);
  if (n == 0) encode_error(e, f, "cannot format number");
  e->len += n;
}

/* ---- values -------------------------------------------------------------- */

static void encode_value(Encoder *e, int idx, const Frame *parent, int depth);

/* Bytewise order, a prefix first. */
static inline int key_cmp(const KeyRef *x, const KeyRef *y) {
  size_t n = x->len < y->len ? x->len : y->len;
  int c;
  if (n > 0 && x->s[0] != y->s[0]) return (unsigned char)x->s[0] < (unsigned char)y->s[0] ? -1 : 1;
  c = memcmp(x->s, y->s, n);
  if (c != 0) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

/* For qsort; never raises. */
static int compare_keys(const void *a, const void *b) {
  return key_cmp((const KeyRef *)a, (const KeyRef *)b);
}

static void sort_keys(KeyRef *k, size_t n) {
  size_t i, j;
  if (n > SORT_SMALL) {
    qsort(k, n, sizeof(KeyRef), compare_keys);
    return;
  }
  for (i = 1; i < n; i++) {
    KeyRef t = k[i];
    for (j = i; j > 0 && key_cmp(&t, &k[j - 1]) < 0; j--) k[j] = k[j - 1];
    k[j] = t;
  }
}

static void keys_grow(Encoder *e) {
  size_t cap = e->keys_cap;
  KeyRef *p;
  if (cap > ((size_t)-1) / (4 * sizeof(KeyRef))) luaL_error(e->L, "table too large");
  cap *= 2;
  p = (KeyRef *)lua_newuserdatauv(e->L, cap * sizeof(KeyRef), 0);
  memcpy(p, e->keys, e->nkeys * sizeof(KeyRef));
  lua_replace(e->L, e->keys_slot);
  e->keys = p;
  e->keys_cap = cap;
}

/* The keys e->keys[base..base+n) were collected with their values. */
static void encode_object(Encoder *e, int idx, Frame *f, size_t base, size_t n, int depth) {
  lua_State *L = e->L;
  size_t i;
  sort_keys(e->keys + base, n);
  put_char(e, '{');
  for (i = 0; i < n; i++) {
    /* e->keys may move when a nested object grows it: index, don't cache */
    const KeyRef k = e->keys[base + i];
    if (i > 0) put_char(e, ',');
    f->key = k.s;
    f->keylen = k.len;
    if (!put_string(e, k.s, k.len)) encode_error(e, f->up, "invalid UTF-8 in object key");
    put_char(e, ':');
    if (k.slot != 0) {
      encode_value(e, k.slot, f, depth);
    } else {
      lua_pushlstring(L, k.s, k.len);
      lua_rawget(L, idx);
      encode_value(e, lua_gettop(L), f, depth);
      lua_pop(L, 1);
    }
  }
  put_char(e, '}');
}

/* Elements 1..kept are on the stack (element i at slot base + 2i). */
static void encode_array(Encoder *e, int idx, Frame *f, lua_Integer n, int base, lua_Integer kept,
                         int depth) {
  lua_State *L = e->L;
  lua_Integer i;
  put_char(e, '[');
  f->key = NULL;
  for (i = 1; i <= n; i++) {
    if (i > 1) put_char(e, ',');
    f->index = i;
    if (i <= kept) {
      encode_value(e, base + 2 * (int)i, f, depth);
    } else {
      lua_rawgeti(L, idx, i);
      encode_value(e, lua_gettop(L), f, depth);
      lua_pop(L, 1);
    }
  }
  put_char(e, ']');
}

static void bad_key(Encoder *e, const Frame *parent) {
  lua_State *L = e->L;
  lua_pushfstring(L, "object keys must be strings (got %s key)", luaL_typename(L, -1));
  encode_error(e, parent, lua_tostring(L, -1));
}

NOINLINE static void encode_table(Encoder *e, int idx, const Frame *parent, int depth) {
  lua_State *L = e->L;
  const void *self = lua_topointer(L, idx);
  const Frame *a;
  Frame f;
  int marked = 0, top, kept = 0;
  size_t nstr = 0, base = e->nkeys;
  lua_Integer nint = 0, maxint = 0, inorder = 0;
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

  /* One pass classifies the keys and collects the string keys. Up to
   * KEEP_MAX key/value pairs stay on the stack (a copy of the key goes on
   * for lua_next): those of string keys, and those of integer keys while
   * they come in order 1, 2, ... Their values are written from there. */
  top = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    int keep = kept < KEEP_MAX &&
               (kept % KEEP_CHUNK != 0 || lua_checkstack(L, 2 * KEEP_CHUNK + 4));
    switch (lua_type(L, -2)) {
    case LUA_TSTRING: {
      KeyRef *k;
      nstr++;
      if (e->nkeys == e->keys_cap) keys_grow(e);
      k = &e->keys[e->nkeys++];
      k->s = lua_tolstring(L, -2, &k->len);
      k->slot = keep ? lua_gettop(L) : 0;
      break;
    }
    case LUA_TNUMBER: {
      /* a float key is never integral: Lua 5.4 normalises those to integers */
      int isint;
      lua_Integer k = lua_tointegerx(L, -2, &isint);
      if (!isint) {
        lua_pop(L, 1);
        bad_key(e, parent);
      }
      nint++;
      if (k < 1) badint = 1;
      else if (k > maxint) maxint = k;
      if (k == inorder + 1 && (lua_Integer)kept == inorder) inorder++;
      else keep = 0;
      break;
    }
    default:
      lua_pop(L, 1);
      bad_key(e, parent);
      break;
    }
    if (keep) {
      lua_pushvalue(L, -2);
      kept++;
    } else {
      lua_pop(L, 1);
    }
  }
  if (inorder > (lua_Integer)kept) inorder = kept;

  f.up = parent;
  f.table = self;
  f.key = NULL;
  f.keylen = 0;
  f.index = 0;
  if (marked) {
    if (nstr > 0) encode_error(e, parent, "array (array_mt) has non-integer keys");
    if (badint || maxint != nint) encode_error(e, parent, "sparse array (keys must be exactly 1..n)");
    encode_array(e, idx, &f, nint, top, inorder, depth);
  } else if (nstr == 0 && nint == 0) {
    put_bytes(e, "{}", 2);
  } else if (nstr > 0 && nint > 0) {
    encode_error(e, parent, "table mixes array and object keys");
  } else if (nint > 0) {
    if (badint || maxint != nint) encode_error(e, parent, "sparse array (keys must be exactly 1..n)");
    encode_array(e, idx, &f, nint, top, inorder, depth);
  } else {
    encode_object(e, idx, &f, base, nstr, depth);
    e->nkeys = base;
  }
  lua_settop(L, top);
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
#if OPENAI_INTEGER_SUBTYPE
    if (lua_isinteger(L, idx)) {
      lua_Integer v = lua_tointeger(L, idx);
      put_integer(e, v < 0, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
      break;
    }
#else
    { /* no subtype: whole numbers a double holds exactly are integers */
      lua_Number v = lua_tonumber(L, idx);
      if (v == floor(v) && fabs(v) <= (lua_Number)INT64_EXACT_DOUBLE && !(v == 0 && signbit(v))) {
        put_integer(e, v < 0, (uint64_t)fabs(v));
        break;
      }
    }
#endif
    put_float(e, parent, lua_tonumber(L, idx));
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
  default: { /* function, full userdata, thread, cdata */
    int negative;
    uint64_t magnitude;
    if (openai_int64_get(L, idx, &negative, &magnitude)) put_integer(e, negative, magnitude);
    else cannot_encode(e, idx, parent);
    break;
  }
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
