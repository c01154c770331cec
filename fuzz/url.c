/* libFuzzer target: the URL encoders of lua/openai/url.lua, loaded into a
 * lua_State with the real openai.core.
 *
 * - url.encode_path_param(s) for the whole input as a string: the output
 *   holds only the characters the official SDKs keep in a path segment
 *   (A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) * + , ; = : @) and %XX escapes with
 *   upper-case hex, never escapes a character it could keep, and decodes
 *   back to s. url.encode_component(s) likewise with the unreserved set.
 * - url.query_string(t) for a table built from the input (strings,
 *   integers, floats incl. inf/nan, booleans, openai.null, arrays, plain
 *   sequences, sequences with a hole and a named field, and nested objects
 *   with string/integer/float/boolean keys):
 *   it must not raise, every pair is key=value with the same encoding rule,
 *   there is one pair per scalar leaf, each key starts with one of the
 *   top-level names, and a second call gives the same text.
 * - url.join(base, path, query) for three strings from the input must not
 *   raise. */
#include "fuzz_common.h" /* first: feature macros */

#include <string.h>


#ifndef OPENAI_SOURCE_ROOT
#define OPENAI_SOURCE_ROOT "."
#endif

int luaopen_openai_core(lua_State *L);

static lua_State *L;
static int url_ref;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  const char *path = getenv("OPENAI_URL_LUA");
  char fallback[4096];
  (void)argc;
  (void)argv;
  if (path == NULL) {
    snprintf(fallback, sizeof fallback, "%s/lua/openai/url.lua", OPENAI_SOURCE_ROOT);
    path = fallback;
  }
  L = fuzz_lua_state();
  luaL_requiref(L, "openai.core", luaopen_openai_core, 0);
  lua_pop(L, 1);
  {
    /* url.lua requires its siblings (openai.compat): the directory that
     * holds openai/ goes first on package.path. */
    size_t len = strlen(path), tail = strlen("openai/url.lua");
    lua_getglobal(L, "package");
    lua_pushlstring(L, path, len >= tail ? len - tail : 0);
    lua_pushliteral(L, "?.lua;");
    lua_getfield(L, -3, "path");
    lua_concat(L, 3);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
  }
  if (luaL_dofile(L, path) != LUA_OK) fuzz_fail("cannot load url.lua", lua_tostring(L, -1));
  if (!lua_istable(L, -1)) fuzz_fail("url.lua did not return a table", NULL);
  url_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static int is_hex_upper(int c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static int hex_value(int c) {
  return c <= '9' ? c - '0' : c - 'A' + 10;
}

static int alnum(int c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int path_keeps(int c) {
  return alnum(c) || (c != 0 && strchr("-._~!$&'()*+,;=:@", c) != NULL);
}

static int component_keeps(int c) {
  return alnum(c) || (c != 0 && strchr("-._~", c) != NULL);
}

/* Checks out[0..n) against the rule and decodes it into dec (size >= n).
 * Returns the decoded length, or fails. */
static size_t check_encoded(const char *what, const char *out, size_t n, int (*keeps)(int), char *dec) {
  size_t i, d = 0;
  for (i = 0; i < n; i++) {
    int c = (unsigned char)out[i];
    if (c == '%') {
      int v;
      if (i + 2 >= n) fuzz_fail(what, "truncated %XX escape");
      if (!is_hex_upper((unsigned char)out[i + 1]) || !is_hex_upper((unsigned char)out[i + 2]))
        fuzz_fail(what, "escape is not %XX with upper-case hex");
      v = hex_value(out[i + 1]) * 16 + hex_value(out[i + 2]);
      if (keeps(v)) fuzz_fail(what, "a character that may stay was escaped");
      dec[d++] = (char)v;
      i += 2;
    } else {
      if (!keeps(c)) fuzz_fail(what, "a character that must be escaped was kept");
      dec[d++] = (char)c;
    }
  }
  return d;
}

static void call_url(const char *name, int nargs, int nresults) {
  /* function below its arguments */
  lua_rawgeti(L, LUA_REGISTRYINDEX, url_ref);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  lua_insert(L, -(nargs + 1));
  if (lua_pcall(L, nargs, nresults, 0) != LUA_OK) fuzz_fail(name, lua_tostring(L, -1));
}

static void check_string_encoder(const char *name, int (*keeps)(int), const char *s, size_t len) {
  const char *out;
  size_t n, d;
  char *dec;
  lua_pushlstring(L, s, len);
  call_url(name, 1, 1);
  if (lua_type(L, -1) != LUA_TSTRING) fuzz_fail(name, "did not return a string");
  out = lua_tolstring(L, -1, &n);
  dec = malloc(n + 1);
  if (dec == NULL) fuzz_fail("out of memory", NULL);
  d = check_encoded(name, out, n, keeps, dec);
  if (d != len || memcmp(dec, s, len) != 0) fuzz_fail(name, "decoding the output does not give the input");
  free(dec);
  lua_pop(L, 1);
}

/* ---- query tables ---- */

static void push_string(struct fuzz_reader *r) {
  size_t n;
  const char *s = fuzz_bytes(r, fuzz_byte(r) % 12, &n);
  lua_pushlstring(L, s, n);
}

static long build_value(struct fuzz_reader *r, int depth);

/* Pushes a key for a nested object: never nil or NaN. */
static void push_key(struct fuzz_reader *r) {
  switch (fuzz_byte(r) % 4) {
  case 0: lua_pushinteger(L, (lua_Integer)(signed char)fuzz_byte(r)); break;
  case 1: lua_pushnumber(L, (lua_Number)fuzz_byte(r) + 0.5); break;
  case 2: lua_pushboolean(L, fuzz_byte(r) & 1); break;
  default: push_string(r); break;
  }
}

/* Scalar leaves of the value at idx (tables built here have no cycles). */
static long count_leaves(int idx) {
  long n = 0;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE) return 1;
  if (!lua_checkstack(L, 4)) fuzz_fail("Lua stack", NULL);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    n += count_leaves(-1);
    lua_pop(L, 1);
  }
  return n;
}

/* Pushes a value; returns how many scalar leaves it holds. */
static long build_value(struct fuzz_reader *r, int depth) {
  unsigned kind = fuzz_byte(r) % 10;
  long leaves = 0;
  int i, n;
  if (!lua_checkstack(L, 8)) fuzz_fail("Lua stack", NULL);
  if (depth > 6 && kind >= 5) kind = 0;
  switch (kind) {
  case 0:
    push_string(r);
    return 1;
  case 1: {
    lua_Integer v = 0;
    size_t got, k;
    const char *b = fuzz_bytes(r, 1 + fuzz_byte(r) % 8, &got);
    for (k = 0; k < got; k++) v = (lua_Integer)(((lua_Unsigned)v << 8) | (unsigned char)b[k]);
    lua_pushinteger(L, v);
    return 1;
  }
  case 2: {
    double v = 0;
    size_t got;
    const char *b = fuzz_bytes(r, sizeof v, &got);
    memcpy(&v, b, got);
    lua_pushnumber(L, (lua_Number)v);
    return 1;
  }
  case 3:
    lua_pushboolean(L, fuzz_byte(r) & 1);
    return 1;
  case 4:
    lua_pushlightuserdata(L, NULL); /* openai.null */
    return 1;
  case 5: /* array with openai.array_mt */
  case 6: /* plain sequence */
    n = (int)(fuzz_byte(r) % 5);
    lua_createtable(L, n, 0);
    for (i = 1; i <= n; i++) {
      leaves += build_value(r, depth + 1);
      lua_rawseti(L, -2, i);
    }
    if (kind == 5) luaL_setmetatable(L, "openai.array_mt");
    return leaves;
  case 9: /* a sequence with a hole and a named field, as {"a", nil, "c", x = 1} builds it */
    n = 2 + (int)(fuzz_byte(r) % 4);
    lua_createtable(L, n, 1);
    for (i = 1; i <= n; i++) {
      leaves += build_value(r, depth + 1);
      lua_rawseti(L, -2, i);
    }
    i = 1 + (int)(fuzz_byte(r) % (unsigned)(n - 1)); /* never the last one */
    lua_rawgeti(L, -1, i);
    leaves -= count_leaves(-1);
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_rawseti(L, -2, i);
    push_string(r);
    leaves += build_value(r, depth + 1);
    lua_rawset(L, -3);
    return leaves;
  default: /* nested object */
    n = (int)(fuzz_byte(r) % 5);
    lua_createtable(L, 0, n);
    for (i = 0; i < n; i++) {
      push_key(r);
      lua_pushvalue(L, -1);
      if (lua_rawget(L, -3) != LUA_TNIL) { /* duplicate key: skip it */
        lua_pop(L, 2);
        continue;
      }
      lua_pop(L, 1);
      leaves += build_value(r, depth + 1);
      lua_rawset(L, -3);
    }
    return leaves;
  }
}

static void check_query(struct fuzz_reader *r) {
  int n = (int)(fuzz_byte(r) % 6), i, top;
  long leaves = 0, pairs = 0;
  size_t len, len2, start = 0, k;
  const char *out, *out2;
  char *dec;
  lua_createtable(L, 0, n);
  top = lua_gettop(L);
  for (i = 0; i < n; i++) {
    push_string(r);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, top) != LUA_TNIL) {
      lua_pop(L, 2);
      continue;
    }
    lua_pop(L, 1);
    leaves += build_value(r, 1);
    lua_rawset(L, top);
  }
  lua_pushvalue(L, top);
  call_url("query_string", 1, 1);
  if (lua_type(L, -1) != LUA_TSTRING) fuzz_fail("query_string", "did not return a string");
  out = lua_tolstring(L, -1, &len);
  dec = malloc(len + 1);
  if (dec == NULL) fuzz_fail("out of memory", NULL);
  /* pairs separated by '&', each with exactly one '=' */
  for (k = 0; k <= len; k++) {
    if (k == len || out[k] == '&') {
      const char *pair = out + start, *eq;
      size_t plen = k - start, klen, d;
      int found = 0;
      if (len == 0) break;
      eq = memchr(pair, '=', plen);
      if (eq == NULL || memchr(eq + 1, '=', plen - (size_t)(eq - pair) - 1) != NULL)
        fuzz_fail("query_string", "a pair without exactly one '='");
      klen = (size_t)(eq - pair);
      d = check_encoded("query_string key", pair, klen, component_keeps, dec);
      check_encoded("query_string value", eq + 1, plen - klen - 1, component_keeps, dec + d);
      /* the key starts with a top-level name */
      lua_pushnil(L);
      while (lua_next(L, top) != 0) {
        size_t nl;
        const char *name = lua_tolstring(L, -2, &nl);
        if (nl <= d && memcmp(dec, name, nl) == 0 && (nl == d || dec[nl] == '[')) found = 1;
        lua_pop(L, 1);
      }
      if (!found) fuzz_fail("query_string", "a key that starts with no parameter name");
      pairs++;
      start = k + 1;
    }
  }
  free(dec);
  if (pairs != leaves) {
    char why[64];
    snprintf(why, sizeof why, "%ld pairs for %ld scalar values", pairs, leaves);
    fuzz_fail("query_string", why);
  }
  lua_pushvalue(L, top);
  call_url("query_string", 1, 1);
  out2 = lua_tolstring(L, -1, &len2);
  if (out2 == NULL || len2 != len || memcmp(out, out2, len) != 0) fuzz_fail("query_string", "not deterministic");
}

static void check_join(struct fuzz_reader *r) {
  push_string(r);
  push_string(r);
  if (fuzz_byte(r) & 1) push_string(r);
  else lua_pushnil(L);
  call_url("join", 3, 1);
  if (lua_type(L, -1) != LUA_TSTRING) fuzz_fail("join", "did not return a string");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fuzz_reader r = {data, size};
  lua_settop(L, 0);
  check_string_encoder("encode_path_param", path_keeps, (const char *)data, size);
  check_string_encoder("encode_component", component_keeps, (const char *)data, size);
  check_query(&r);
  lua_settop(L, 0);
  r.p = data;
  r.left = size;
  check_join(&r);
  lua_settop(L, 0);
  return 0;
}
