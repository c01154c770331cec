#include "http_head.h"

#include <stdio.h>
#include <string.h>

static int is_blank(char c) {
  return c == ' ' || c == '\t';
}

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

static char ascii_lower(char c) {
  return (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
}

int http_token_char(unsigned char c) {
  if (((c | 32) >= 'a' && (c | 32) <= 'z') || (c >= '0' && c <= '9')) return 1;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* ---- reading lines ---- */

/* A "Name: value" line (without its LF): 0 when it has no name. */
static int split_header(const char *p, const char *line_end, struct http_header *h) {
  const char *colon = memchr(p, ':', (size_t)(line_end - p));
  const char *v, *ve = line_end;
  if (colon == NULL || colon == p) return 0;
  v = colon + 1;
  while (v < ve && is_blank(*v)) v++;
  while (ve > v && (ve[-1] == '\r' || is_blank(ve[-1]))) ve--;
  h->name = p;
  h->name_len = (size_t)(colon - p);
  h->value = v;
  h->value_len = (size_t)(ve - v);
  return 1;
}

void http_head_lenient(struct http_head_cursor *c, const char *block, size_t len) {
  c->pos = block ? block : "";
  c->end = c->pos + len;
  c->skip_status_lines = 1;
}

int http_head_next(struct http_head_cursor *c, struct http_header *h) {
  while (c->pos < c->end) {
    const char *p = c->pos;
    const char *eol = memchr(p, '\n', (size_t)(c->end - p));
    const char *line_end = eol ? eol : c->end;
    c->pos = eol ? eol + 1 : c->end;
    if (c->skip_status_lines && line_end - p >= 5 && memcmp(p, "HTTP/", 5) == 0) continue;
    if (split_header(p, line_end, h)) return 1;
  }
  return 0;
}

/* ---- checking a head ---- */

static int refuse(char *err, size_t errsize, unsigned long line, const char *why) {
  if (errsize == 0) return 0;
  if (line > 0)
    snprintf(err, errsize, "line %lu: %s", line, why);
  else
    snprintf(err, errsize, "%s", why);
  return 0;
}

/* "HTTP/1.1 200 OK" without its line end; the reason may be absent. */
static int parse_status_line(const char *p, const char *line_end, int *status) {
  size_t n = (size_t)(line_end - p);
  if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ') return 0;
  if (!is_digit(p[9]) || !is_digit(p[10]) || !is_digit(p[11])) return 0;
  if (n > 12 && p[12] != ' ') return 0;
  *status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
  return 1;
}

/* What is wrong with a header line (without its line end), or NULL. */
static const char *header_line_problem(const char *p, const char *line_end) {
  const char *colon, *q;
  /* a continuation of the previous line: RFC 9112 lets a client refuse it,
   * and two readers could disagree on what it means */
  if (is_blank(*p)) return "obsolete line folding";
  colon = memchr(p, ':', (size_t)(line_end - p));
  if (colon == NULL) return "header line without ':'";
  if (colon == p) return "empty header name";
  for (q = p; q < colon; q++)
    if (!http_token_char((unsigned char)*q)) return "invalid character in header name";
  return NULL;
}

int http_head_parse(const char *block, size_t len, int *status, struct http_head_cursor *headers,
                    char *err, size_t errsize) {
  const char *p = block, *end;
  unsigned long line = 0;
  if (len == 0) return refuse(err, errsize, 0, "missing status line");
  end = block + len;
  headers->pos = headers->end = end;
  headers->skip_status_lines = 0; /* after the first line, every line is a header */
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *line_end;
    const char *why;
    line++;
    if (eol == NULL) return refuse(err, errsize, line, "not ended by CRLF or LF");
    line_end = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
    if (memchr(p, '\0', (size_t)(line_end - p)) != NULL) return refuse(err, errsize, line, "NUL byte");
    if (memchr(p, '\r', (size_t)(line_end - p)) != NULL) return refuse(err, errsize, line, "bare CR");
    if (line == 1) {
      if (line_end == p) return refuse(err, errsize, 0, "missing status line");
      if (!parse_status_line(p, line_end, status)) return refuse(err, errsize, 0, "invalid status line");
      headers->pos = eol + 1;
    } else if (line_end == p) { /* the blank line ends the head */
      if (eol + 1 != end) return refuse(err, errsize, 0, "bytes after the end of the head");
    } else if ((why = header_line_problem(p, line_end)) != NULL) {
      return refuse(err, errsize, line, why);
    }
    p = eol + 1;
  }
  return 1;
}

/* ---- as Lua values ---- */

static void push_lower(lua_State *L, const char *s, size_t n) {
  luaL_Buffer b;
  size_t i;
  luaL_buffinit(L, &b);
  for (i = 0; i < n; i++) luaL_addchar(&b, ascii_lower(s[i]));
  luaL_pushresult(&b);
}

/* The values of a repeated header wait in a list and are joined once at
 * the end: joining at each repeat would copy the value so far again and
 * again, quadratic in the block. repeats[name] = {count at [0], values...}.
 * Takes the name from the top of the stack. */
static void add_repeat(lua_State *L, int headers, int repeats, const struct http_header *h) {
  lua_Integer n;
  lua_pushvalue(L, -1);
  if (lua_rawget(L, repeats) == LUA_TNIL) { /* the second one: the list starts with the first */
    lua_pop(L, 1);
    lua_createtable(L, 4, 1);
    lua_pushvalue(L, -2);
    lua_rawget(L, headers);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, 1);
    lua_rawseti(L, -2, 0);
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, repeats);
  }
  lua_rawgeti(L, -1, 0);
  n = lua_tointeger(L, -1) + 1;
  lua_pop(L, 1);
  lua_pushlstring(L, h->value, h->value_len);
  lua_rawseti(L, -2, n);
  lua_pushinteger(L, n);
  lua_rawseti(L, -2, 0);
  lua_pop(L, 2);
}

static void join_repeats(lua_State *L, int headers, int repeats) {
  lua_pushnil(L);
  while (lua_next(L, repeats) != 0) {
    int list = lua_gettop(L);
    lua_Integer i, n;
    luaL_Buffer b;
    lua_rawgeti(L, list, 0);
    n = lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_pushvalue(L, list - 1); /* the name, under the buffer */
    luaL_buffinit(L, &b);
    for (i = 1; i <= n; i++) {
      if (i > 1) luaL_addlstring(&b, ", ", 2);
      lua_rawgeti(L, list, i);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_rawset(L, headers);
    lua_pop(L, 1); /* the list; the name stays for lua_next */
  }
}

void http_head_push_headers(lua_State *L, struct http_head_cursor *c) {
  struct http_header h;
  int headers, repeats = 0;
  lua_createtable(L, 0, 16);
  headers = lua_gettop(L);
  while (http_head_next(c, &h)) {
    push_lower(L, h.name, h.name_len);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, headers) == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushlstring(L, h.value, h.value_len);
      lua_rawset(L, headers);
      continue;
    }
    lua_pop(L, 1);
    if (repeats == 0) { /* made at the first repeat: most heads have none */
      lua_newtable(L);
      lua_insert(L, -2);
      repeats = headers + 1;
    }
    add_repeat(L, headers, repeats, &h);
  }
  if (repeats != 0) {
    join_repeats(L, headers, repeats);
    lua_pop(L, 1);
  }
}

void http_head_push_value(lua_State *L, struct http_head_cursor *c, const char *lower_name) {
  size_t wanted = strlen(lower_name);
  struct http_header h;
  luaL_Buffer b;
  int found = 0;
  luaL_buffinit(L, &b);
  while (http_head_next(c, &h)) {
    size_t i;
    if (h.name_len != wanted) continue;
    for (i = 0; i < wanted && ascii_lower(h.name[i]) == lower_name[i]; i++) {}
    if (i < wanted) continue;
    if (found) luaL_addlstring(&b, ", ", 2);
    luaL_addlstring(&b, h.value, h.value_len);
    found = 1;
  }
  luaL_pushresult(&b);
  if (!found) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
}

/* core.http_head(block) -> status, headers | nil, message. The block is a
 * Lua string on the stack: it stays put while the table is built. */
int openai_http_head_lua(lua_State *L) {
  size_t len;
  const char *block = luaL_checklstring(L, 1, &len);
  struct http_head_cursor c;
  char err[96];
  int status = 0;
  if (!http_head_parse(block, len, &status, &c, err, sizeof err)) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushinteger(L, status);
  http_head_push_headers(L, &c);
  return 2;
}

/* core.http_token(text) -> boolean: whether text is an HTTP token (a
 * header name or a method), the rule the Lua layer checks header names
 * with before any transport sees them. */
int openai_http_token_lua(lua_State *L) {
  size_t len = 0, i;
  int is_string = lua_type(L, 1) == LUA_TSTRING; /* before lua_tolstring turns a number into one */
  const char *text = is_string ? lua_tolstring(L, 1, &len) : NULL;
  int ok = is_string && len > 0;
  for (i = 0; ok && i < len; i++) ok = http_token_char((unsigned char)text[i]);
  lua_pushboolean(L, ok);
  return 1;
}
