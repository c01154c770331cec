/* JSON text -> Lua values, in one pass, straight into Lua tables.
 *
 * Rules (the README's "The JSON rules"):
 *   - numbers: no '.', 'e' or 'E' and fits int64 -> integer, else float
 *     (never clamped: 9223372036854775808 is a float); where numbers have
 *     no integer subtype, integers within 2^53 are numbers and those beyond,
 *     up to -2^63 .. 2^64-1, exact boxes (int64.h); floats are correctly
 *     rounded: exactly by one multiplication or division when the digits
 *     fit 2^53 and the power of ten is exact (Clinger's fast path), else by
 *     strtod on a copy with the locale's decimal point (locale-independent);
 *   - null -> light userdata NULL (openai.null), the key stays present;
 *   - arrays -> 1-based tables with the registry metatable OPENAI_ARRAY_MT;
 *     objects -> plain tables, the last duplicate key wins;
 *   - strings keep embedded NULs, are strict UTF-8 (openai_utf8_char: no
 *     overlong forms, surrogates or code points above U+10FFFF) and have
 *     their escapes decoded; a surrogate escape must be a high one followed
 *     by a low one (a lone one is an error), and control characters must be
 *     escaped;
 *   - whitespace is space, tab, LF and CR only;
 *   - at most max_depth nested containers and max_values values (every
 *     scalar, string, array and object; keys do not count): the decode stops
 *     before building the value that passes either limit.
 *
 * Errors and memory. The decoder calls only the Lua API and libc, so a Lua
 * error (out of memory) may unwind through it: it owns nothing Lua cannot
 * free. Its scratch memory (the unescaped-string buffer, container frames
 * beyond the first ones) lives in userdata kept in stack slots. A finalizer
 * that runs at an allocation cannot change the text (a Lua string on the
 * stack, or a buffer the caller took out of reach of Lua code) nor anything
 * of the decoder's, which lives on the C stack and in its own stack slots.
 *
 * Tables are built with their final size: a container's items wait on the
 * Lua stack (up to WAITING of them) and are stored when it closes, or when
 * the batch is full, into a table created with room for them; so most
 * objects and arrays are never rehashed while they are filled.
 *
 * Short strings repeat from one response to the next (keys, "assistant",
 * "stop"...): a cache of the lua_State (STRING_CACHE entries, kept in the
 * registry) maps their bytes to the Lua strings made for them, so a string
 * seen before is pushed without Lua hashing and interning it again.
 *
 * Stack layout (base = top on entry):
 *   base+1  array metatable       base+2  scratch buffer (userdata) or nil
 *   base+3  frames (userdata) or nil, once the local frames are not enough
 *   base+4  the string cache's strings (a table)
 *   then, per open container, a slot for its table (nil until created)
 *   followed by its waiting items (for objects: key, value, key, value...).
 */
#include <errno.h>
#include <float.h>
#include <langinfo.h> /* nl_langinfo is thread-safe; localeconv is not */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "int64.h"
#include "json.h"

#define SLOT_MT      1
#define SLOT_SCRATCH 2
#define SLOT_FRAMES  3
#define SLOT_STRINGS 4
#define SLOT_FIRST   5 /* the top-level value */

/* The string cache: entry i holds the bytes of the string at index i + 1 of
 * its table. Only strings of 1 to STRING_CACHE_MAX bytes are cached. */
#define STRING_CACHE 256
#define STRING_CACHE_MAX 24

struct string_cache {
  struct {
    unsigned char len; /* 0: empty */
    char bytes[STRING_CACHE_MAX];
  } entries[STRING_CACHE];
};

static const char cache_key = 0, cache_strings_key = 0;

/* Stack slots of items (array elements, or keys and values) a container
 * keeps waiting before they go into its table. */
#define WAITING 64
#define LOCAL_FRAMES 32

typedef struct Frame {
  int table;        /* stack index of the table slot */
  int is_array;
  lua_Integer n;    /* items already stored in the table (arrays) */
  int created;      /* the table exists */
} Frame;

typedef struct Decoder {
  lua_State *L;
  const unsigned char *start, *p, *end;
  int base;
  int depth, max_depth;
  size_t values, max_values;
  Frame *frames;
  int frames_cap;
  unsigned char *scratch;
  size_t scratch_cap;
  struct string_cache *cache;
  char *err;
  size_t errsize;
  Frame local[LOCAL_FRAMES];
} Decoder;

/* ---- errors ---------------------------------------------------------------- */

/* Records "invalid JSON: <what> at byte N" (N: offset of the bad byte). */
static int fail_at(Decoder *d, const char *what, const unsigned char *where) {
  snprintf(d->err, d->errsize, "invalid JSON: %s at byte %lu", what, (unsigned long)(where - d->start));
  return 0;
}

static int unexpected(Decoder *d) {
  char what[40];
  if (d->p >= d->end) return fail_at(d, "premature EOF", d->end);
  if (*d->p >= 0x20 && *d->p < 0x7F)
    snprintf(what, sizeof what, "unexpected character '%c'", *d->p);
  else
    snprintf(what, sizeof what, "unexpected byte 0x%02X", *d->p);
  return fail_at(d, what, d->p);
}

/* ---- scalars -------------------------------------------------------------- */

static void skip_ws(Decoder *d) {
  const unsigned char *p = d->p, *end = d->end;
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
  d->p = p;
}

/* One more value; 0 past the cap. */
static int count_value(Decoder *d) {
  if (++d->values > d->max_values) {
    snprintf(d->err, d->errsize, "JSON has more than %lu values", (unsigned long)d->max_values);
    return 0;
  }
  return 1;
}

static const double exact_powers[] = {
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* strtod on a NUL-terminated copy of the number, with '.' replaced by the
 * locale's decimal point (strtod honours LC_NUMERIC). Overflow gives
 * +-HUGE_VAL (inf), underflow a denormal or zero, as strtod does. */
static int slow_double(Decoder *d, const unsigned char *s, size_t len, double *out) {
  char local[128], point[8] = ".";
  char *buf = local, *end;
  const char *dp = nl_langinfo(RADIXCHAR);
  size_t pointlen = 1, need, i, j = 0;
  int ok;
  if (dp != NULL && dp[0] != '\0' && strlen(dp) < sizeof point) {
    pointlen = strlen(dp);
    memcpy(point, dp, pointlen + 1);
  }
  need = len + pointlen + 1;
  if (need > sizeof local) {
    buf = (char *)malloc(need); /* no Lua call until it is freed */
    if (buf == NULL) {
      snprintf(d->err, d->errsize, "cannot decode JSON: not enough memory");
      return 0;
    }
  }
  for (i = 0; i < len; i++) {
    if (s[i] == '.') {
      memcpy(buf + j, point, pointlen);
      j += pointlen;
    } else {
      buf[j++] = (char)s[i];
    }
  }
  buf[j] = '\0';
  *out = strtod(buf, &end);
  ok = end == buf + j;
  if (buf != local) free(buf);
  if (!ok) return fail_at(d, "bad number", s);
  return 1;
}

/* A number, by the JSON grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
 * Its first 19 significant digits make `mantissa`, worth mantissa * 10^scale
 * (digits past them are `dropped`: they only go to strtod). */
static int parse_number(Decoder *d) {
  const unsigned char *s = d->p, *q = s, *end = d->end;
  uint64_t mantissa = 0;
  int negative = 0, taken = 0, dropped = 0, is_float = 0;
  long scale = 0;
  if (q < end && *q == '-') {
    negative = 1;
    q++;
  }
  if (q >= end) return fail_at(d, "premature EOF", end);
  if (*q == '0') {
    q++;
  } else if (*q >= '1' && *q <= '9') {
    for (; q < end && *q >= '0' && *q <= '9'; q++) {
      if (taken < 19) {
        mantissa = mantissa * 10 + (uint64_t)(*q - '0');
        taken++;
      } else {
        dropped++;
        scale++;
      }
    }
  } else {
    d->p = q;
    return unexpected(d);
  }
  if (q < end && *q == '.') {
    is_float = 1;
    q++;
    if (q >= end) return fail_at(d, "premature EOF", end);
    if (*q < '0' || *q > '9') return fail_at(d, "bad number", q);
    for (; q < end && *q >= '0' && *q <= '9'; q++) {
      if (taken < 19) {
        if (mantissa != 0 || *q != '0') { /* leading zeros are not significant */
          mantissa = mantissa * 10 + (uint64_t)(*q - '0');
          taken++;
        }
        scale--;
      } else {
        dropped++;
      }
    }
  }
  if (q < end && (*q == 'e' || *q == 'E')) {
    int exp_negative = 0;
    long e = 0;
    is_float = 1;
    q++;
    if (q < end && (*q == '+' || *q == '-')) exp_negative = *q++ == '-';
    if (q >= end) return fail_at(d, "premature EOF", end);
    if (*q < '0' || *q > '9') return fail_at(d, "bad number", q);
    for (; q < end && *q >= '0' && *q <= '9'; q++)
      if (e < 100000) e = e * 10 + (*q - '0');
    scale += exp_negative ? -e : e;
  }
  if (!count_value(d)) return 0;
  d->p = q;
#if OPENAI_INTEGER_SUBTYPE
  if (!is_float && dropped == 0) { /* at most 19 digits: int64 when within its range */
    if (!negative && mantissa <= (uint64_t)LUA_MAXINTEGER) {
      lua_pushinteger(d->L, (lua_Integer)mantissa);
      return 1;
    }
    if (negative && mantissa <= (uint64_t)LUA_MAXINTEGER + 1) {
      lua_pushinteger(d->L, mantissa == (uint64_t)LUA_MAXINTEGER + 1 ? LUA_MININTEGER : -(lua_Integer)mantissa);
      return 1;
    }
  }
#else
  if (!is_float && dropped <= 1) { /* up to 20 digits: exact within -2^63 .. 2^64-1 */
    uint64_t magnitude = mantissa;
    int fits = 1;
    if (dropped == 1) {
      unsigned last = (unsigned)(q[-1] - '0');
      fits = mantissa <= (UINT64_MAX - last) / 10;
      magnitude = mantissa * 10 + last;
    }
    if (fits && magnitude <= INT64_EXACT_DOUBLE) {
      /* "-0" is 0 (not -0.0), as the integer it is on 5.3 and 5.4 */
      lua_pushnumber(d->L, negative && magnitude != 0 ? -(lua_Number)magnitude : (lua_Number)magnitude);
      return 1;
    }
    if (fits && (!negative || magnitude <= (uint64_t)INT64_MAX + 1)) {
      openai_int64_push(d->L, negative, magnitude);
      return 1;
    }
  }
#endif
  {
    double value;
#if FLT_EVAL_METHOD == 0 /* one rounding per operation: the fast path is exact */
    if (dropped == 0 && mantissa <= ((uint64_t)1 << 53) && scale >= -22 && scale <= 22) {
      value = (double)mantissa;
      value = scale < 0 ? value / exact_powers[-scale] : value * exact_powers[scale];
      if (negative) value = -value;
    } else
#endif
    if (!slow_double(d, s, (size_t)(q - s), &value)) {
      return 0;
    }
    lua_pushnumber(d->L, (lua_Number)value);
  }
  return 1;
}

static int parse_literal(Decoder *d, const char *word, size_t len) {
  if ((size_t)(d->end - d->p) < len || memcmp(d->p, word, len) != 0) {
    const unsigned char *q = d->p;
    while (q < d->end && (size_t)(q - d->p) < len && *q == (unsigned char)word[q - d->p]) q++;
    if (q >= d->end) return fail_at(d, "premature EOF", d->end);
    d->p = q;
    return unexpected(d);
  }
  if (!count_value(d)) return 0;
  d->p += len;
  if (word[0] == 'n')
    openai_pushnull(d->L);
  else
    lua_pushboolean(d->L, word[0] == 't');
  return 1;
}

/* ---- strings -------------------------------------------------------------- */

/* Bytes a string scan stops at: below 0x20 (an error), '"' (the end),
 * '\\' (an escape) and 0x80 and above (UTF-8 to check). */
static const unsigned char stops[256] = {
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* The first stop byte at or after p, or end. Eight bytes at a time where
 * the compiler says how to find the lowest flagged byte: the flags below
 * are exact up to the first stop byte (a borrow only runs upwards, into
 * later bytes on a little-endian machine). */
static const unsigned char *find_stop(const unsigned char *p, const unsigned char *end) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
  while (end - p >= 8) {
    uint64_t w, quote, backslash, flags;
    memcpy(&w, p, sizeof w);
    quote = w ^ (ones * '"');
    backslash = w ^ (ones * '\\');
    flags = (((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | w) & highs;
    if (flags != 0) return p + (__builtin_ctzll(flags) >> 3);
    p += 8;
  }
#endif
  while (p < end && !stops[*p]) p++;
  return p;
}

/* Makes room for n more bytes after `used` in the scratch buffer. */
static void scratch_reserve(Decoder *d, size_t used, size_t n) {
  lua_State *L = d->L;
  size_t cap = d->scratch_cap ? d->scratch_cap : 256;
  unsigned char *grown;
  if (used + n <= d->scratch_cap) return;
  while (cap < used + n) cap *= 2;
  grown = (unsigned char *)lua_newuserdatauv(L, cap, 0);
  if (used > 0) memcpy(grown, d->scratch, used);
  lua_replace(L, d->base + SLOT_SCRATCH);
  d->scratch = grown;
  d->scratch_cap = cap;
}

static int hex4(const unsigned char *p, unsigned *out) {
  unsigned v = 0;
  int i;
  for (i = 0; i < 4; i++) {
    unsigned c = p[i];
    if (c >= '0' && c <= '9') v = v * 16 + (c - '0');
    else if ((c | 32) >= 'a' && (c | 32) <= 'f') v = v * 16 + ((c | 32) - 'a' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

/* The escape at d->p (after its backslash) decoded into the scratch buffer
 * at *used. */
static int unescape(Decoder *d, size_t *used) {
  const unsigned char *p = d->p;
  unsigned cp, low;
  unsigned char *o;
  if (p >= d->end) return fail_at(d, "premature EOF", d->end);
  scratch_reserve(d, *used, 4);
  o = d->scratch + *used;
  switch (*p) {
  case '"': *o = '"'; break;
  case '\\': *o = '\\'; break;
  case '/': *o = '/'; break;
  case 'b': *o = '\b'; break;
  case 'f': *o = '\f'; break;
  case 'n': *o = '\n'; break;
  case 'r': *o = '\r'; break;
  case 't': *o = '\t'; break;
  case 'u':
    if (d->end - p < 5) return fail_at(d, "premature EOF", d->end);
    if (!hex4(p + 1, &cp)) return fail_at(d, "bad \\u escape", p - 1);
    if (cp >= 0xDC00 && cp <= 0xDFFF) return fail_at(d, "lone surrogate escape", p - 1);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (d->end - p < 11 || p[5] != '\\' || p[6] != 'u' || !hex4(p + 7, &low) || low < 0xDC00 || low > 0xDFFF)
        return fail_at(d, "lone surrogate escape", p - 1);
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      p += 6;
    }
    p += 4;
    if (cp < 0x80) {
      o[0] = (unsigned char)cp;
      *used += 1;
    } else if (cp < 0x800) {
      o[0] = (unsigned char)(0xC0 | (cp >> 6));
      o[1] = (unsigned char)(0x80 | (cp & 0x3F));
      *used += 2;
    } else if (cp < 0x10000) {
      o[0] = (unsigned char)(0xE0 | (cp >> 12));
      o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
      o[2] = (unsigned char)(0x80 | (cp & 0x3F));
      *used += 3;
    } else {
      o[0] = (unsigned char)(0xF0 | (cp >> 18));
      o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
      o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
      o[3] = (unsigned char)(0x80 | (cp & 0x3F));
      *used += 4;
    }
    d->p = p + 1;
    return 1;
  default:
    return fail_at(d, "bad escape", p - 1);
  }
  *used += 1;
  d->p = p + 1;
  return 1;
}

/* Pushes s[0..len): from the string cache when it was seen before, else a
 * new Lua string, which then takes the cache entry. The entry is chosen by
 * the length and the first and last bytes, read as two words. */
static void push_string(Decoder *d, const unsigned char *s, size_t len) {
  lua_State *L = d->L;
  uint64_t head = 0, tail = 0;
  unsigned slot;
  if (len == 0 || len > STRING_CACHE_MAX) {
    lua_pushlstring(L, (const char *)s, len);
    return;
  }
  if (len >= 8) {
    memcpy(&head, s, 8);
    memcpy(&tail, s + len - 8, 8);
  } else {
    size_t i;
    for (i = 0; i < len; i++) head = head << 8 | s[i];
  }
  slot = (unsigned)(((head * UINT64_C(0x9E3779B97F4A7C15)) ^ (tail * UINT64_C(0xC2B2AE3D27D4EB4F)) ^ len) >> 56);
  if (d->cache->entries[slot].len == len && memcmp(d->cache->entries[slot].bytes, s, len) == 0) {
    lua_rawgeti(L, d->base + SLOT_STRINGS, (lua_Integer)slot + 1);
    return;
  }
  lua_pushlstring(L, (const char *)s, len); /* may run a finalizer: the entry is set after */
  lua_pushvalue(L, -1);
  lua_rawseti(L, d->base + SLOT_STRINGS, (lua_Integer)slot + 1);
  memcpy(d->cache->entries[slot].bytes, s, len);
  d->cache->entries[slot].len = (unsigned char)len;
}

/* The string at d->p (its opening quote) pushed onto the stack. Without
 * escapes it is pushed straight from the text; with escapes it is built in
 * the scratch buffer. */
static int parse_string(Decoder *d) {
  const unsigned char *p = d->p + 1, *end = d->end, *run = p;
  size_t used = 0;
  int escaped = 0;
  for (;;) {
    unsigned char c;
    p = find_stop(p, end);
    if (p >= end) return fail_at(d, "premature EOF", end);
    c = *p;
    if (c == '"') break;
    if (c == '\\') {
      size_t n = (size_t)(p - run);
      scratch_reserve(d, used, n);
      if (n > 0) memcpy(d->scratch + used, run, n);
      used += n;
      d->p = p + 1;
      if (!unescape(d, &used)) return 0;
      p = run = d->p;
      escaped = 1;
    } else if (c < 0x20) {
      return fail_at(d, "control character in string", p);
    } else {
      size_t n = openai_utf8_char(p, (size_t)(end - p));
      if (n == 0) return fail_at(d, "invalid UTF-8 in string", p);
      p += n;
    }
  }
  if (escaped) {
    size_t n = (size_t)(p - run);
    scratch_reserve(d, used, n);
    if (n > 0) memcpy(d->scratch + used, run, n);
    push_string(d, d->scratch, used + n);
  } else {
    push_string(d, run, (size_t)(p - run));
  }
  d->p = p + 1;
  return 1;
}

/* ---- containers ----------------------------------------------------------- */

static Frame *push_frame(Decoder *d) {
  lua_State *L = d->L;
  if (d->depth >= d->frames_cap) {
    int cap = d->frames_cap * 2;
    Frame *grown = (Frame *)lua_newuserdatauv(L, (size_t)cap * sizeof(Frame), 0);
    memcpy(grown, d->frames, (size_t)d->frames_cap * sizeof(Frame));
    lua_replace(L, d->base + SLOT_FRAMES);
    d->frames = grown;
    d->frames_cap = cap;
  }
  return &d->frames[d->depth++];
}

/* Opens an array or object: a slot for its table, filled once its size is
 * known. */
static int open_container(Decoder *d, int is_array) {
  lua_State *L = d->L;
  Frame *f;
  if (d->depth >= d->max_depth) {
    snprintf(d->err, d->errsize, "JSON nested too deeply (limit %d)", d->max_depth);
    return 0;
  }
  if (!count_value(d)) return 0;
  /* the table slot, a full batch, and a few to work with */
  if (!lua_checkstack(L, WAITING + 8)) {
    snprintf(d->err, d->errsize, "JSON nested too deeply (Lua stack exhausted)");
    return 0;
  }
  f = push_frame(d);
  lua_pushnil(L);
  f->table = lua_gettop(L);
  f->is_array = is_array;
  f->n = 0;
  f->created = 0;
  d->p++;
  return 1;
}

/* Stores the waiting items of f into its table, creating it sized for them
 * when it does not exist yet. */
static void flush(Decoder *d, Frame *f) {
  lua_State *L = d->L;
  int waiting = lua_gettop(L) - f->table;
  if (!f->created) {
    if (f->is_array) {
      lua_createtable(L, waiting, 0);
      lua_pushvalue(L, d->base + SLOT_MT);
      lua_setmetatable(L, -2);
    } else {
      lua_createtable(L, 0, waiting / 2);
    }
    lua_replace(L, f->table);
    f->created = 1;
  }
  if (f->is_array) {
    int i;
    for (i = waiting; i >= 1; i--) lua_rawseti(L, f->table, f->n + i); /* pops the top */
    f->n += waiting;
  } else {
    int i;
    /* in order, so that the last of duplicate keys wins */
    for (i = f->table + 1; i < f->table + waiting; i += 2) {
      lua_pushvalue(L, i);
      lua_pushvalue(L, i + 1);
      lua_rawset(L, f->table);
    }
    lua_settop(L, f->table);
  }
}

/* ---- the document ---------------------------------------------------------- */

static int parse_value(Decoder *d) {
  switch (*d->p) {
  case '"':
    return count_value(d) && parse_string(d);
  case 't': return parse_literal(d, "true", 4);
  case 'f': return parse_literal(d, "false", 5);
  case 'n': return parse_literal(d, "null", 4);
  default:
    if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9')) return parse_number(d);
    return unexpected(d);
  }
}

/* The document at d->p: its value pushed at base + SLOT_FIRST. */
static int parse_document(Decoder *d) {
  lua_State *L = d->L;
  for (;;) {
    Frame *f;
    /* a value */
    skip_ws(d);
    if (d->p >= d->end) return fail_at(d, "premature EOF", d->end);
    if (*d->p == '[' || *d->p == '{') {
      int is_array = *d->p == '[';
      if (!open_container(d, is_array)) return 0;
      skip_ws(d);
      if (d->p < d->end && *d->p == (is_array ? ']' : '}')) {
        d->p++;
        flush(d, &d->frames[--d->depth]); /* empty */
      } else if (!is_array) {
        goto key;
      } else {
        continue;
      }
    } else if (!parse_value(d)) {
      return 0;
    }
    /* a complete value is on top: after it, ',' or the end of its container */
    for (;;) {
      if (d->depth == 0) return 1;
      f = &d->frames[d->depth - 1];
      if (lua_gettop(L) - f->table >= WAITING) flush(d, f);
      skip_ws(d);
      if (d->p >= d->end) return fail_at(d, "premature EOF", d->end);
      if (*d->p == ',') {
        d->p++;
        if (f->is_array) break;
        goto key;
      }
      if (*d->p != (f->is_array ? ']' : '}')) return unexpected(d);
      d->p++;
      flush(d, f);
      d->depth--;
    }
    continue;
  key:
    skip_ws(d);
    if (d->p >= d->end) return fail_at(d, "premature EOF", d->end);
    if (*d->p != '"') return unexpected(d);
    if (!parse_string(d)) return 0;
    skip_ws(d);
    if (d->p >= d->end) return fail_at(d, "premature EOF", d->end);
    if (*d->p != ':') return unexpected(d);
    d->p++;
  }
}

int openai_json_decode(lua_State *L, const char *text, size_t len, int max_depth,
                       size_t max_values, char *err, size_t errsize) {
  Decoder d;
  char spare[1];
  if (err == NULL || errsize == 0) {
    err = spare;
    errsize = sizeof spare;
  }
  err[0] = '\0';
  d.L = L;
  d.start = d.p = (const unsigned char *)text;
  d.end = d.start + len;
  d.base = lua_gettop(L);
  d.depth = 0;
  d.max_depth = max_depth > 0 ? max_depth : OPENAI_JSON_MAX_DEPTH;
  d.values = 0;
  d.max_values = max_values > 0 ? max_values : OPENAI_JSON_MAX_VALUES;
  d.frames = d.local;
  d.frames_cap = LOCAL_FRAMES;
  d.scratch = NULL;
  d.scratch_cap = 0;
  d.err = err;
  d.errsize = errsize;

  skip_ws(&d);
  if (d.p >= d.end) {
    snprintf(err, errsize, "invalid JSON: empty input");
    return 0;
  }
  luaL_checkstack(L, WAITING + 8, "JSON decode");
  lua_rawgetp(L, LUA_REGISTRYINDEX, openai_array_mt_key); /* SLOT_MT */
  lua_pushnil(L);                                          /* SLOT_SCRATCH */
  lua_pushnil(L);                                          /* SLOT_FRAMES */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_strings_key);   /* SLOT_STRINGS */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key);
  d.cache = (struct string_cache *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!parse_document(&d)) {
    lua_settop(L, d.base);
    return 0;
  }
  skip_ws(&d);
  if (d.p < d.end) {
    lua_settop(L, d.base);
    return fail_at(&d, "trailing garbage", d.p);
  }
  lua_replace(L, d.base + 1);
  lua_settop(L, d.base + 1);
  return 1;
}

int openai_json_decode_lua(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  lua_Integer max_depth = luaL_optinteger(L, 2, OPENAI_JSON_MAX_DEPTH);
  lua_Integer max_values = luaL_optinteger(L, 3, (lua_Integer)OPENAI_JSON_MAX_VALUES);
  char err[256];
  luaL_argcheck(L, max_depth >= 1 && max_depth <= INT_MAX, 2, "max_depth must be a positive integer");
  luaL_argcheck(L, max_values >= 1, 3, "max_values must be a positive integer");
#if LUA_MAXINTEGER > SIZE_MAX
  if (max_values > (lua_Integer)SIZE_MAX) max_values = (lua_Integer)SIZE_MAX;
#endif
  lua_settop(L, 1);
  if (openai_json_decode(L, text, len, (int)max_depth, (size_t)max_values, err, sizeof err)) return 1;
  luaL_pushfail(L);
  lua_pushstring(L, err);
  return 2;
}

/* The registry key of the array metatable besides its name: a light
 * userdata lookup is cheaper than a string one, once per decode. */
static const char array_mt_key_storage = 0;
const void *const openai_array_mt_key = &array_mt_key_storage;

void openai_json_open(lua_State *L) {
  struct string_cache *cache;
  luaL_newmetatable(L, OPENAI_ARRAY_MT);
  lua_rawsetp(L, LUA_REGISTRYINDEX, openai_array_mt_key);
  cache = (struct string_cache *)lua_newuserdatauv(L, sizeof *cache, 0);
  memset(cache, 0, sizeof *cache);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_key);
  lua_createtable(L, STRING_CACHE, 0);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_strings_key);
}
