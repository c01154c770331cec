/* openai.Connection: the HTTP transport over libcurl.
 *
 * Rules this file keeps:
 * - libcurl callbacks only copy bytes into malloc'd buffers (or feed the SSE
 *   decoder); no Lua API call ever happens inside them, so no Lua error can
 *   unwind libcurl's frames.
 * - Everything a request allocates is owned by a transfer inside a userdata,
 *   so a Lua error raised while arguments are read leaks nothing: the next
 *   request or close()/__gc frees it.
 * - Every easy handle runs inside its connection's multi handle, where the
 *   connection cache (keep-alive, TLS sessions) lives, shared by the
 *   client's requests and streams. */
#define _POSIX_C_SOURCE 200809L

#include "http.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "transfer.h"

#define DEFAULT_MAX_RESPONSE_BYTES ((lua_Integer)64 * 1024 * 1024)
#define MAX_HEADER_BYTES (256 * 1024)
/* Buffers larger than this are released after each response. */
#define KEEP_BUFFER_BYTES (256 * 1024)
/* A stream stops reading from the network while this much is unread. */
#define EVENT_QUEUE_PAUSE_BYTES (256 * 1024)

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init_once(void) {
  /* A failure here shows up as curl_easy_init() returning NULL. */
  (void)curl_global_init(CURL_GLOBAL_DEFAULT);
}

int openai_http_global_init(void) {
  return pthread_once(&global_once, global_init_once) == 0;
}

double openai_monotonic(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* ---- libcurl callbacks: bytes only ---- */

/* Queued event layout: flag byte (1 = has an event name), name length,
 * name, data length, data. */
static int queue_event(void *ud, const char *event, size_t event_len, const char *data, size_t data_len) {
  struct transfer *t = ud;
  char has_event = event != NULL;
  if (!event) event_len = 0;
  if (!buffer_append(&t->events, &has_event, 1) || !buffer_append(&t->events, (const char *)&event_len, sizeof event_len) ||
      !buffer_append(&t->events, event ? event : "", event_len) ||
      !buffer_append(&t->events, (const char *)&data_len, sizeof data_len) || !buffer_append(&t->events, data, data_len)) {
    t->out_of_memory = 1;
    return 0;
  }
  return 1;
}

void transfer_finish_events(struct transfer *t) {
  switch (sse_finish(&t->sse, queue_event, t)) {
  case SSE_OK: break;
  case SSE_TOO_LARGE: t->too_large = 1; break;
  default: t->out_of_memory = 1; break;
  }
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct transfer *t = ud;
  size_t n = size * nmemb;
  t->last_activity = openai_monotonic();
  if (t->streaming && t->status >= 200 && t->status < 300) {
    if (t->events.len - t->events_read > EVENT_QUEUE_PAUSE_BYTES) {
      t->paused = 1;
      return CURL_WRITEFUNC_PAUSE; /* libcurl keeps these bytes for later */
    }
    switch (sse_feed(&t->sse, ptr, n, queue_event, t)) {
    case SSE_OK: return n;
    case SSE_TOO_LARGE: t->too_large = 1; return 0;
    default: t->out_of_memory = 1; return 0;
    }
  }
  if (n > t->max_response_bytes - t->body.len) {
    t->too_large = 1;
    return 0; /* CURLE_WRITE_ERROR ends the transfer */
  }
  if (!buffer_append(&t->body, ptr, n)) {
    t->out_of_memory = 1;
    return 0;
  }
  return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct transfer *t = ud;
  size_t n = size * nmemb;
  t->last_activity = openai_monotonic();
  /* A new status line starts a new response (after a 1xx, say): only the
   * final response's headers are reported. */
  if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
    buffer_reset(&t->head, KEEP_BUFFER_BYTES);
    t->headers_done = 0;
  }
  if (n > MAX_HEADER_BYTES - t->head.len) {
    t->too_large = 1;
    return 0;
  }
  if (!buffer_append(&t->head, ptr, n)) {
    t->out_of_memory = 1;
    return 0;
  }
  if ((n == 2 && ptr[0] == '\r' && ptr[1] == '\n') || (n == 1 && ptr[0] == '\n')) {
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 || status < 100) {
      t->status = status;
      t->headers_done = 1;
    }
  }
  return n;
}

/* ---- transfers ---- */

static void set_pointers(struct transfer *t) {
  curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, (void *)t);
  curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, (void *)t);
  curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(t->easy, CURLOPT_PRIVATE, (void *)t);
}

static void set_defaults(CURL *easy) {
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L); /* hosts run us on threads */
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, ""); /* every coding libcurl can decode */
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
}

int transfer_init_from(struct transfer *t, struct connection *conn) {
  memset(t, 0, sizeof *t);
  t->conn = conn;
  t->max_response_bytes = conn->request.max_response_bytes;
  /* duphandle copies the client's CA, proxy and other settings. */
  t->easy = curl_easy_duphandle(conn->request.easy);
  if (t->easy == NULL) return 0;
  set_pointers(t);
  return 1;
}

void transfer_stop(struct transfer *t) {
  if (t->active) {
    if (t->conn && t->conn->multi) curl_multi_remove_handle(t->conn->multi, t->easy);
    t->active = 0;
  }
}

void transfer_release(struct transfer *t) {
  if (t->easy != NULL) {
    transfer_stop(t);
    curl_easy_cleanup(t->easy);
    t->easy = NULL;
  }
  curl_slist_free_all(t->headers);
  t->headers = NULL;
  buffer_free(&t->body);
  buffer_free(&t->head);
  buffer_free(&t->events);
  t->events_read = 0;
  sse_free(&t->sse);
}

static int is_token(const char *s) {
  if (*s == '\0') return 0;
  for (; *s; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
          strchr("!#$%&'*+-.^_`|~", *s)))
      return 0;
  return 1;
}

/* Reads the array of "Name: value" lines at idx into t->headers. Lines with
 * CR, LF or NUL never reach the wire. */
static void load_headers(lua_State *L, struct transfer *t, int idx) {
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, idx);
  curl_slist_free_all(t->headers);
  t->headers = NULL;
  for (i = 1; i <= n + 1; i++) {
    struct curl_slist *grown;
    const char *line = "Expect:"; /* no 100-continue round trip for bodies */
    if (i <= n) {
      size_t len;
      if (lua_rawgeti(L, idx, i) != LUA_TSTRING) luaL_error(L, "header %d is not a string", (int)i);
      line = lua_tolstring(L, -1, &len);
      if (strlen(line) != len || strpbrk(line, "\r\n") != NULL)
        luaL_error(L, "header %d contains CR, LF or NUL", (int)i);
    }
    grown = curl_slist_append(t->headers, line);
    if (i <= n) lua_pop(L, 1);
    if (grown == NULL) luaL_error(L, "out of memory");
    t->headers = grown;
  }
}

static void set_method(lua_State *L, struct transfer *t, int arg, const char *method, const char *body, size_t body_len) {
  CURL *e = t->easy;
  luaL_argcheck(L, is_token(method), arg, "invalid HTTP method");
  curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, (char *)NULL);
  if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 || (body == NULL && strcmp(method, "DELETE") == 0)) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    if (strcmp(method, "HEAD") == 0)
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    return;
  }
  /* Any other method sends a body, an empty one if none was given, so a
   * Content-Length always frames the request. The Lua string outlives the
   * transfer: it stays referenced by the caller until the response. */
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

void transfer_prepare(lua_State *L, struct transfer *t, int first, int streaming) {
  size_t method_len, url_len, body_len = 0;
  const char *method = luaL_checklstring(L, first, &method_len);
  const char *url = luaL_checklstring(L, first + 1, &url_len);
  const char *body;
  long ms;
  luaL_checktype(L, first + 2, LUA_TTABLE);
  body = luaL_optlstring(L, first + 3, NULL, &body_len);
  ms = timeout_ms(L, first + 4);
  /* libcurl reads C strings: an embedded NUL would cut them short. */
  luaL_argcheck(L, strlen(method) == method_len, first, "invalid HTTP method");
  luaL_argcheck(L, strlen(url) == url_len && strpbrk(url, "\r\n") == NULL, first + 1, "URL contains CR, LF or NUL");
  load_headers(L, t, first + 2);
  set_method(L, t, first, method, body, body_len);
  if (curl_easy_setopt(t->easy, CURLOPT_URL, url) != CURLE_OK) luaL_error(L, "libcurl rejected the URL");
  curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
  /* A stream's timeout is enforced by stream.c: until the headers, then
   * between reads. libcurl's own limit would cut long streams. */
  curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, streaming ? 0L : ms);
  /* libcurl's own 300 s connect limit must not undercut a longer timeout. */
  curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, ms);
  buffer_reset(&t->body, KEEP_BUFFER_BYTES);
  buffer_reset(&t->head, KEEP_BUFFER_BYTES);
  buffer_reset(&t->events, KEEP_BUFFER_BYTES);
  sse_free(&t->sse);
  sse_init(&t->sse, t->max_response_bytes);
  t->events_read = 0;
  t->streaming = streaming;
  t->status = 0;
  t->headers_done = t->done = t->sse_finished = t->paused = 0;
  t->too_large = t->out_of_memory = 0;
  t->result = CURLE_OK;
  t->errbuf[0] = '\0';
  t->last_activity = openai_monotonic();
  t->timeout = (double)ms / 1000.0;
}

int transfer_start(struct transfer *t) {
  if (curl_multi_add_handle(t->conn->multi, t->easy) != CURLM_OK) return 0;
  t->active = 1;
  return 1;
}

void connection_drive(struct connection *c) {
  int running = 0, queued = 0;
  CURLMsg *msg;
  (void)curl_multi_perform(c->multi, &running);
  while ((msg = curl_multi_info_read(c->multi, &queued)) != NULL) {
    if (msg->msg == CURLMSG_DONE) {
      char *owner = NULL;
      CURL *easy = msg->easy_handle;
      CURLcode result = msg->data.result; /* msg is invalid once removed */
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, &owner);
      if (owner != NULL) {
        struct transfer *t = (struct transfer *)(void *)owner;
        t->result = result;
        t->done = 1;
        transfer_stop(t);
      }
    }
  }
}

void connection_wait(struct connection *c, long wait_ms) {
  if (wait_ms > 0) curl_multi_poll(c->multi, NULL, 0, (int)wait_ms, NULL);
}

/* ---- results ---- */

/* The last response's headers as a table of lower-case names; repeated
 * headers are joined with ", ". */
void transfer_push_headers(lua_State *L, const struct transfer *t) {
  const char *p = t->head.data ? t->head.data : "";
  const char *end = p + t->head.len;
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

int transfer_push_failure(lua_State *L, struct transfer *t) {
  if (t->out_of_memory) return luaL_error(L, "out of memory while reading the response");
  lua_pushnil(L);
  if (t->too_large) {
    lua_pushliteral(L, "too_large");
    if (t->streaming && t->headers_done && t->status >= 200 && t->status < 300)
      lua_pushfstring(L, "a server-sent event exceeds the limit of %I bytes", (lua_Integer)t->max_response_bytes);
    else if (t->headers_done)
      lua_pushfstring(L, "response exceeds the limit of %I bytes", (lua_Integer)t->max_response_bytes);
    else
      lua_pushliteral(L, "response headers exceed the limit");
  } else if (t->result == CURLE_OUT_OF_MEMORY && !t->headers_done) {
    /* libcurl says "Out of memory" for a header line over its own limit
     * (100 KiB): it is the server's fault, not a reason to retry. */
    lua_pushliteral(L, "too_large");
    lua_pushliteral(L, "a response header line exceeds libcurl's limit");
  } else if (t->result == CURLE_OK) {
    lua_pushliteral(L, "connection");
    lua_pushliteral(L, "the response ended before its headers were complete");
  } else {
    lua_pushstring(L, t->result == CURLE_OPERATION_TIMEDOUT ? "timeout" : "connection");
    lua_pushstring(L, t->errbuf[0] ? t->errbuf : curl_easy_strerror(t->result));
  }
  return 3;
}

/* status, headers, body[, decode error]. With decode, a non-empty body is
 * parsed as JSON; when that fails the raw text comes with the reason. */
int transfer_push_response(lua_State *L, struct transfer *t, int decode) {
  char err[256];
  lua_pushinteger(L, t->status);
  transfer_push_headers(L, t);
  if (decode && t->body.len > 0) {
    if (openai_json_decode(L, t->body.data, t->body.len, OPENAI_JSON_MAX_DEPTH, OPENAI_JSON_MAX_VALUES, err, sizeof err)) return 3;
    lua_pushlstring(L, t->body.data, t->body.len);
    lua_pushstring(L, err);
    return 4;
  }
  lua_pushlstring(L, t->body.data ? t->body.data : "", t->body.len);
  return 3;
}

/* ---- the Connection userdata ---- */

struct connection *openai_check_connection(lua_State *L, int idx) {
  struct connection *c = luaL_checkudata(L, idx, OPENAI_CONNECTION_MT);
  if (c->multi == NULL) luaL_error(L, "attempt to use a closed connection");
  return c;
}

/* One close for close(), __gc and __close; safe to call any number of
 * times. Streams still open are aborted first: their easy handles live in
 * this multi handle. */
static void connection_release(struct connection *c) {
  while (c->streams != NULL) {
    struct transfer *t = c->streams;
    c->streams = t->next_stream;
    t->next_stream = NULL;
    openai_stream_abort(t);
  }
  transfer_release(&c->request);
  if (c->multi != NULL) {
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
  }
}

static int connection_close(lua_State *L) {
  connection_release(luaL_checkudata(L, 1, OPENAI_CONNECTION_MT));
  return 0;
}

static int connection_tostring(lua_State *L) {
  struct connection *c = luaL_checkudata(L, 1, OPENAI_CONNECTION_MT);
  if (c->multi == NULL)
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
 * opts: ca_file, ca_path, proxy (strings; proxy "" ignores the proxy
 * environment variables), max_response_bytes (integer). */
static int connection_new(lua_State *L) {
  struct connection *c;
  int has_opts = !lua_isnoneornil(L, 1);
  if (has_opts) luaL_checktype(L, 1, LUA_TTABLE);
  c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, OPENAI_CONNECTION_MT);
  c->request.conn = c;
  c->request.max_response_bytes = (size_t)DEFAULT_MAX_RESPONSE_BYTES;
  c->request.easy = curl_easy_init();
  c->multi = curl_multi_init();
  if (c->request.easy == NULL || c->multi == NULL) {
    connection_release(c);
    return luaL_error(L, "cannot initialise libcurl");
  }
  set_defaults(c->request.easy);
  set_pointers(&c->request);
  if (has_opts) {
    int has_file = lua_getfield(L, 1, "ca_file") != LUA_TNIL;
    int has_path = lua_getfield(L, 1, "ca_path") != LUA_TNIL;
    lua_pop(L, 2);
    /* A CA given here is the whole trust: libcurl's default bundle or
     * directory is not consulted beside it. */
    if (has_file && !has_path) curl_easy_setopt(c->request.easy, CURLOPT_CAPATH, (char *)NULL);
    if (has_path && !has_file) curl_easy_setopt(c->request.easy, CURLOPT_CAINFO, (char *)NULL);
    set_string_option(L, c->request.easy, 1, "ca_file", CURLOPT_CAINFO);
    set_string_option(L, c->request.easy, 1, "ca_path", CURLOPT_CAPATH);
    set_string_option(L, c->request.easy, 1, "proxy", CURLOPT_PROXY);
    if (lua_getfield(L, 1, "max_response_bytes") != LUA_TNIL) {
      int isint;
      lua_Integer limit = lua_tointegerx(L, -1, &isint);
      if (!isint || limit <= 0) return luaL_error(L, "option 'max_response_bytes' must be a positive integer");
      c->request.max_response_bytes = (size_t)limit;
    }
    lua_pop(L, 1);
  }
  return 1;
}

/* conn:request(method, url, headers, body|nil, timeout_seconds, decode)
 *   -> status, headers, body[, decode_error]
 *   -> nil, "timeout"|"connection"|"too_large", message */
static int connection_request(lua_State *L) {
  struct connection *c = openai_check_connection(L, 1);
  struct transfer *t = &c->request;
  int decode = lua_toboolean(L, 7);
  transfer_prepare(L, t, 2, 0);
  if (!transfer_start(t)) return luaL_error(L, "cannot start the transfer");
  for (;;) {
    connection_drive(c);
    if (t->done) break;
    connection_wait(c, 1000);
  }
  if (t->result != CURLE_OK || t->out_of_memory) return transfer_push_failure(L, t);
  return transfer_push_response(L, t, decode);
}

static const luaL_Reg connection_methods[] = {
  {"request", connection_request},
  {"stream", openai_stream_open},
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
  openai_stream_register(L);
  lua_pushcfunction(L, connection_new);
  lua_setfield(L, -2, "connection");
}
