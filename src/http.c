/* openai.Connection: the HTTP transport over libcurl.
 *
 * Rules this file keeps:
 * - libcurl callbacks only copy bytes into malloc'd buffers; no Lua API call
 *   ever happens inside them, so no Lua error can unwind libcurl's frames.
 * - Everything a request allocates is owned by the Connection userdata, so a
 *   Lua error raised while arguments are read leaks nothing: the next request
 *   or close()/__gc frees it.
 * - The easy handle always runs inside the connection's own multi handle. The
 *   connection cache (keep-alive, TLS sessions) lives there and is reused by
 *   every request of the client. */
#define _POSIX_C_SOURCE 200809L

#include "http.h"

#include <curl/curl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "buffer.h"
#include "json.h"

#define DEFAULT_MAX_RESPONSE_BYTES ((lua_Integer)64 * 1024 * 1024)
#define MAX_HEADER_BYTES (256 * 1024)
/* Buffers larger than this are released after each response. */
#define KEEP_BUFFER_BYTES (256 * 1024)

struct connection {
  CURL *easy;  /* NULL once closed */
  CURLM *multi;
  struct curl_slist *headers; /* request headers of the last request */
  struct buffer body;
  struct buffer head; /* header lines of the last response received */
  size_t max_response_bytes;
  int too_large; /* the body outgrew max_response_bytes */
  int out_of_memory;
  char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init_once(void) {
  /* A failure here shows up as curl_easy_init() returning NULL. */
  (void)curl_global_init(CURL_GLOBAL_DEFAULT);
}

int openai_http_global_init(void) {
  return pthread_once(&global_once, global_init_once) == 0;
}

/* ---- libcurl callbacks: bytes only ---- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct connection *c = ud;
  size_t n = size * nmemb;
  if (n > c->max_response_bytes - c->body.len) {
    c->too_large = 1;
    return 0; /* CURLE_WRITE_ERROR ends the transfer */
  }
  if (!buffer_append(&c->body, ptr, n)) {
    c->out_of_memory = 1;
    return 0;
  }
  return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct connection *c = ud;
  size_t n = size * nmemb;
  /* A new status line starts a new response (after 100-continue, say):
   * only the last response's headers are reported. */
  if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) buffer_reset(&c->head, KEEP_BUFFER_BYTES);
  if (c->head.len + n > MAX_HEADER_BYTES) {
    c->too_large = 1;
    return 0;
  }
  if (!buffer_append(&c->head, ptr, n)) {
    c->out_of_memory = 1;
    return 0;
  }
  return n;
}

/* ---- the userdata ---- */

static struct connection *check_connection(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, OPENAI_CONNECTION_MT);
}

static struct connection *check_open(lua_State *L, int idx) {
  struct connection *c = check_connection(L, idx);
  if (c->easy == NULL) luaL_error(L, "attempt to use a closed connection");
  return c;
}

/* One close for close(), __gc and __close; safe to call any number of times. */
static void connection_release(struct connection *c) {
  if (c->easy != NULL) {
    if (c->multi != NULL) curl_multi_remove_handle(c->multi, c->easy);
    curl_easy_cleanup(c->easy);
    c->easy = NULL;
  }
  if (c->multi != NULL) {
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
  }
  curl_slist_free_all(c->headers);
  c->headers = NULL;
  buffer_free(&c->body);
  buffer_free(&c->head);
}

static int connection_close(lua_State *L) {
  connection_release(check_connection(L, 1));
  return 0;
}

static int connection_tostring(lua_State *L) {
  struct connection *c = check_connection(L, 1);
  if (c->easy == NULL)
    lua_pushliteral(L, "openai.Connection (closed)");
  else
    lua_pushfstring(L, "openai.Connection (%p)", (void *)c);
  return 1;
}

static void set_string_option(lua_State *L, CURL *easy, int opts, const char *field, CURLoption option) {
  if (lua_getfield(L, opts, field) == LUA_TSTRING) {
    if (curl_easy_setopt(easy, option, lua_tostring(L, -1)) != CURLE_OK)
      luaL_error(L, "libcurl rejected option '%s'", field);
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "option '%s' must be a string", field);
  }
  lua_pop(L, 1);
}

/* core.connection([opts]) -> Connection
 * opts: ca_file, ca_path, proxy (strings; proxy "" disables the proxy
 * environment variables), max_response_bytes (integer). */
static int connection_new(lua_State *L) {
  struct connection *c;
  int has_opts = !lua_isnoneornil(L, 1);
  if (has_opts) luaL_checktype(L, 1, LUA_TTABLE);
  c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, OPENAI_CONNECTION_MT);
  c->max_response_bytes = (size_t)DEFAULT_MAX_RESPONSE_BYTES;
  c->easy = curl_easy_init();
  c->multi = curl_multi_init();
  if (c->easy == NULL || c->multi == NULL) {
    connection_release(c);
    return luaL_error(L, "cannot initialise libcurl");
  }
  curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L); /* hosts run us on threads */
  curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, (void *)c);
  curl_easy_setopt(c->easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c->easy, CURLOPT_HEADERDATA, (void *)c);
  curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
  curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c->easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c->easy, CURLOPT_ACCEPT_ENCODING, ""); /* every coding libcurl can decode */
  curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c->easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  if (has_opts) {
    set_string_option(L, c->easy, 1, "ca_file", CURLOPT_CAINFO);
    set_string_option(L, c->easy, 1, "ca_path", CURLOPT_CAPATH);
    set_string_option(L, c->easy, 1, "proxy", CURLOPT_PROXY);
    if (lua_getfield(L, 1, "max_response_bytes") != LUA_TNIL) {
      int isint;
      lua_Integer limit = lua_tointegerx(L, -1, &isint);
      if (!isint || limit <= 0) return luaL_error(L, "option 'max_response_bytes' must be a positive integer");
      c->max_response_bytes = (size_t)limit;
    }
    lua_pop(L, 1);
  }
  return 1;
}

/* ---- one request ---- */

static int is_token(const char *s) {
  if (*s == '\0') return 0;
  for (; *s; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr("!#$%&'*+-.^_`|~", *s)))
      return 0;
  return 1;
}

/* Reads the array of "Name: value" lines at idx into c->headers. Lines with
 * CR, LF or NUL never reach the wire. */
static void load_headers(lua_State *L, struct connection *c, int idx) {
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, idx);
  curl_slist_free_all(c->headers);
  c->headers = NULL;
  for (i = 1; i <= n + 1; i++) {
    struct curl_slist *grown;
    const char *line = "Expect:"; /* no 100-continue round trip for bodies */
    if (i <= n) {
      size_t len;
      lua_rawgeti(L, idx, i);
      line = lua_tolstring(L, -1, &len);
      if (line == NULL || lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "header %d is not a string", (int)i);
      if (strlen(line) != len || strpbrk(line, "\r\n") != NULL)
        luaL_error(L, "header %d contains CR, LF or NUL", (int)i);
    }
    grown = curl_slist_append(c->headers, line);
    if (i <= n) lua_pop(L, 1);
    if (grown == NULL) luaL_error(L, "out of memory");
    c->headers = grown;
  }
}

static void set_method(lua_State *L, struct connection *c, const char *method, const char *body, size_t body_len) {
  CURL *e = c->easy;
  luaL_argcheck(L, is_token(method), 2, "invalid HTTP method");
  curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, (char *)NULL);
  if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 || (body == NULL && strcmp(method, "DELETE") == 0)) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    return;
  }
  /* Any other method sends a body, an empty one if none was given, so a
   * Content-Length always frames the request. The Lua string outlives the
   * transfer: it is an argument of this call. */
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
  if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
}

static long timeout_ms(lua_State *L, int idx) {
  lua_Number seconds = luaL_checknumber(L, idx);
  luaL_argcheck(L, seconds > 0, idx, "timeout must be a positive number of seconds");
  if (seconds == HUGE_VAL || seconds * 1000.0 >= (lua_Number)LONG_MAX) return 0; /* no limit */
  return (long)ceil(seconds * 1000.0);
}

/* Runs the transfer to its end. Returns libcurl's result. */
static CURLcode run_transfer(struct connection *c) {
  CURLcode result = CURLE_OK;
  int done = 0;
  CURLMcode mc = curl_multi_add_handle(c->multi, c->easy);
  if (mc != CURLM_OK) return CURLE_FAILED_INIT;
  while (!done) {
    int running = 0, queued = 0;
    CURLMsg *msg;
    mc = curl_multi_perform(c->multi, &running);
    if (mc != CURLM_OK) {
      result = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
      break;
    }
    while ((msg = curl_multi_info_read(c->multi, &queued)) != NULL) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == c->easy) {
        result = msg->data.result;
        done = 1;
      }
    }
    if (!done && running == 0) { /* finished without a message: should not happen */
      result = CURLE_RECV_ERROR;
      break;
    }
    if (!done && curl_multi_poll(c->multi, NULL, 0, 1000, NULL) != CURLM_OK) {
      result = CURLE_RECV_ERROR;
      break;
    }
  }
  curl_multi_remove_handle(c->multi, c->easy);
  return result;
}

/* Pushes the last response's headers as a table of lower-case names; repeated
 * headers are joined with ", ". */
static void push_headers(lua_State *L, const struct buffer *head) {
  const char *p = head->data ? head->data : "";
  const char *end = p + head->len;
  lua_createtable(L, 0, 16);
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *line_end = eol ? eol : end;
    const char *colon = memchr(p, ':', (size_t)(line_end - p));
    if (colon != NULL && colon > p && !(line_end - p >= 5 && memcmp(p, "HTTP/", 5) == 0)) {
      const char *v = colon + 1, *ve = line_end;
      luaL_Buffer name;
      const char *n;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      luaL_buffinit(L, &name);
      for (n = p; n < colon; n++) luaL_addchar(&name, (char)((*n >= 'A' && *n <= 'Z') ? *n + 32 : *n));
      luaL_pushresult(&name);
      lua_pushvalue(L, -1);
      if (lua_rawget(L, -3) == LUA_TSTRING) {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      }
      lua_rawset(L, -3);
    }
    p = line_end + 1;
  }
}

/* conn:request(method, url, headers, body|nil, timeout_seconds, decode)
 *   -> status, headers, body, decode_error|nil
 *   -> nil, "timeout"|"connection"|"too_large", message
 * With decode, a non-empty body is parsed as JSON; when that fails the raw
 * text is returned with the reason as fourth value. */
static int connection_request(lua_State *L) {
  struct connection *c = check_open(L, 1);
  const char *method = luaL_checkstring(L, 2);
  const char *url = luaL_checkstring(L, 3);
  size_t body_len = 0;
  const char *body;
  long ms;
  int decode;
  CURLcode result;
  luaL_checktype(L, 4, LUA_TTABLE);
  body = luaL_optlstring(L, 5, NULL, &body_len);
  ms = timeout_ms(L, 6);
  decode = lua_toboolean(L, 7);
  luaL_argcheck(L, strpbrk(url, "\r\n") == NULL, 3, "URL contains CR or LF");
  load_headers(L, c, 4);

  set_method(L, c, method, body, body_len);
  if (curl_easy_setopt(c->easy, CURLOPT_URL, url) != CURLE_OK) return luaL_error(L, "libcurl rejected the URL");
  curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers);
  curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, ms);
  /* libcurl's own 300 s connect limit must not undercut a longer timeout. */
  curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, ms);
  buffer_reset(&c->body, KEEP_BUFFER_BYTES);
  buffer_reset(&c->head, KEEP_BUFFER_BYTES);
  c->too_large = c->out_of_memory = 0;
  c->errbuf[0] = '\0';

  result = run_transfer(c);

  if (c->out_of_memory) return luaL_error(L, "out of memory while reading the response");
  if (result != CURLE_OK) {
    lua_pushnil(L);
    if (c->too_large) {
      lua_pushliteral(L, "too_large");
      lua_pushfstring(L, "response exceeds the limit of %I bytes", (lua_Integer)c->max_response_bytes);
    } else {
      lua_pushstring(L, result == CURLE_OPERATION_TIMEDOUT ? "timeout" : "connection");
      lua_pushstring(L, c->errbuf[0] ? c->errbuf : curl_easy_strerror(result));
    }
    return 3;
  }
  {
    long status = 0;
    char err[256];
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    lua_pushinteger(L, status);
    push_headers(L, &c->head);
    if (decode && c->body.len > 0) {
      if (openai_json_decode(L, c->body.data, c->body.len, OPENAI_JSON_MAX_DEPTH, err, sizeof err))
        return 3;
      lua_pushlstring(L, c->body.data, c->body.len);
      lua_pushstring(L, err);
      return 4;
    }
    lua_pushlstring(L, c->body.data ? c->body.data : "", c->body.len);
    return 3;
  }
}

static const luaL_Reg connection_methods[] = {
  {"request", connection_request},
  {"close", connection_close},
  {NULL, NULL}
};

static const luaL_Reg connection_metamethods[] = {
  {"__gc", connection_close},
  {"__close", connection_close},
  {"__tostring", connection_tostring},
  {"__index", NULL}, /* placeholder */
  {NULL, NULL}
};

void openai_http_open(lua_State *L) {
  luaL_newmetatable(L, OPENAI_CONNECTION_MT);
  luaL_setfuncs(L, connection_metamethods, 0);
  luaL_newlib(L, connection_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, connection_new);
  lua_setfield(L, -2, "connection");
}
