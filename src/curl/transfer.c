/* Transfers on libcurl: callbacks, preparing and starting a request,
 * driving the multi handle, and waiting. The ownership rules are in
 * transfer.h. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "interrupt.h"
#include "transfer.h"
#include "codec/http_head.h"

#define MAX_HEADER_BYTES (256 * 1024)
/* A stream stops reading from the network while this much is unread, and
 * reads again once it is down to the low mark. */
#define EVENT_QUEUE_PAUSE_BYTES (256 * 1024)
#define EVENT_QUEUE_RESUME_BYTES (64 * 1024)
/* What an easy handle with its connection costs beyond our own buffers:
 * libcurl's receive buffer, its handle and connection state (an idle
 * stream measured 16 kB of resident memory on Linux x86-64). */
#define HANDLE_FOOTPRINT (16 * 1024)

/* ---- memory told to the GC ---- */

static void update_footprint(struct transfer *t) {
  size_t now = 0;
  if (t->easy != NULL) {
    now = HANDLE_FOOTPRINT + t->body.cap + t->head.cap + t->events.bytes + t->sse.line.cap +
          t->sse.event.cap + t->sse.data.cap;
  }
  if (t->conn != NULL) t->conn->footprint = t->conn->footprint - t->footprint + now;
  t->footprint = now;
}

/* A socket is scarcer than memory: a process may hold only so many files
 * (RLIMIT_NOFILE, often 1024). Once a connection has more open streams
 * than a program usually reads at once, each socket it opens is told to
 * the GC as 1/128 of the allocation that brings a full cycle at the current
 * heap size (the pause, then the marking: about twice the heap), so that
 * unreachable streams are collected before their sockets fill an eighth of
 * the limit, whatever the size of the heap. */
#define MANY_STREAMS 16
static size_t file_limit(void) {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 1024;
  return limit.rlim_cur < 64 ? 64 : limit.rlim_cur > (1 << 20) ? (1 << 20) : (size_t)limit.rlim_cur;
}

void connection_account(lua_State *L, struct connection *c) {
  size_t kib = 0, files = 0;
  if (c->footprint > c->accounted) kib = (c->footprint - c->accounted) / 1024;
  c->accounted = c->footprint;
  if (c->sockets_opened > 0 && c->open_streams > MANY_STREAMS) {
    files = file_limit();
    kib += c->sockets_opened * ((size_t)lua_gc(L, LUA_GCCOUNT, 0) * 2 * 8 / files);
  }
  c->sockets_opened = 0;
  if (!OPENAI_GC_RUNNING(L)) return; /* the host runs the collector itself */
  /* An incremental step sized as if Lua had allocated this much. */
  if (kib > 0) lua_gc(L, LUA_GCSTEP, kib > INT_MAX ? INT_MAX : (int)kib);
  /* The same debt buys less marking from the collectors of Lua 5.2 and 5.3
   * (abandoned streams held 238 and 159 sockets of 1024 there, under 144
   * on 5.4): a full collection when the streams reach an eighth of the
   * limit all the same, then each sixteenth more, so that streams a
   * program does read cost one collection per 1/16 of the limit at most. */
  if (files > 0 && c->open_streams > (c->collect_above ? c->collect_above : files / 8)) {
    lua_gc(L, LUA_GCCOLLECT, 0);
#if !OPENAI_EPHEMERONS
    lua_gc(L, LUA_GCCOLLECT, 0); /* what a weak-keyed table held, see compat.h */
#endif
    c->collect_above = c->open_streams + files / 16;
  }
}

/* ---- libcurl callbacks: C memory only (rule 3) ---- */

/* The decoder queues events straight into t->events; it stops
 * (SSE_STOPPED) only when the queue runs out of memory. */
void transfer_finish_events(struct transfer *t) {
  switch (sse_finish(&t->sse, event_queue_emit, &t->events)) {
  case SSE_OK: break;
  case SSE_TOO_LARGE: t->too_large = 1; break;
  default: t->out_of_memory = 1; break;
  }
  update_footprint(t);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct transfer *t = ud;
  size_t n = size * nmemb, taken = n;
  t->last_activity = openai_monotonic();
  if (t->streaming && t->status >= 200 && t->status < 300) {
    if (t->events.bytes > EVENT_QUEUE_PAUSE_BYTES) {
      t->paused = 1;
      return CURL_WRITEFUNC_PAUSE; /* libcurl keeps these bytes for later */
    }
    switch (sse_feed(&t->sse, ptr, n, event_queue_emit, &t->events)) {
    case SSE_OK: break;
    case SSE_TOO_LARGE: t->too_large = 1; taken = 0; break;
    default: t->out_of_memory = 1; taken = 0; break;
    }
  } else if (n > t->max_response_bytes - t->body.len) {
    t->too_large = 1;
    taken = 0; /* CURLE_WRITE_ERROR ends the transfer */
  } else if (!buffer_append(&t->body, ptr, n)) {
    t->out_of_memory = 1;
    taken = 0;
  }
  update_footprint(t);
  return taken;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct transfer *t = ud;
  size_t n = size * nmemb;
  t->last_activity = openai_monotonic();
  /* After the final response's header block only trailers come: they are
   * not the response's headers. */
  if (t->headers_done) return n;
  /* A new status line starts a new response (after a 1xx, say): only the
   * final response's headers are reported. */
  if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) buffer_reset(&t->head, KEEP_BUFFER_BYTES);
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

/* Opens the sockets libcurl connects with: close-on-exec, so a child
 * started with io.popen or os.execute does not inherit them, and with the
 * reason kept when the process is out of file descriptors (libcurl itself
 * only says it could not connect). */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *addr) {
  struct transfer *t = ud;
  int type = addr->socktype;
  curl_socket_t s;
  (void)purpose;
#ifdef SOCK_CLOEXEC
  type |= SOCK_CLOEXEC;
#endif
  s = socket(addr->family, type, addr->protocol);
  if (s == CURL_SOCKET_BAD)
    t->socket_errno = errno;
  else if (t->conn != NULL)
    t->conn->sockets_opened++;
  return s;
}

/* ---- transfers ---- */

void transfer_set_pointers(struct transfer *t) {
  curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, (void *)t);
  curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, (void *)t);
  curl_easy_setopt(t->easy, CURLOPT_OPENSOCKETDATA, (void *)t);
  curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(t->easy, CURLOPT_PRIVATE, (void *)t);
}

void transfer_set_defaults(CURL *easy) {
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L); /* hosts run us on threads */
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
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
  t->max_response_values = conn->request.max_response_values;
  /* duphandle copies the client's CA, proxy and other settings. */
  t->easy = curl_easy_duphandle(conn->request.easy);
  if (t->easy == NULL) return 0;
  transfer_set_pointers(t);
  update_footprint(t);
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
  t->headers_from = NULL;
  buffer_free(&t->body);
  buffer_free(&t->head);
  event_queue_clear(&t->events);
  sse_free(&t->sse);
  t->paused = 0;
  update_footprint(t);
}

void transfer_resume_reading(struct transfer *t) {
  if (t->paused && t->easy != NULL && t->events.bytes <= EVENT_QUEUE_RESUME_BYTES) {
    t->paused = 0;
    /* may call on_body at once with the bytes it held back */
    curl_easy_pause(t->easy, CURLPAUSE_CONT);
  }
}

static int is_token(const char *s) {
  if (*s == '\0') return 0;
  for (; *s; s++)
    if (!http_token_char((unsigned char)*s)) return 0;
  return 1;
}

/* Reads the array of "Name: value" lines at idx into t->headers. Lines with
 * CR, LF or NUL never reach the wire. With owner (the Connection at that
 * index owns t), the list built from a table is kept while the table stays
 * anchored in HEADERS_SLOT, and the same table next time reuses it
 * (rule 6). */
static void load_headers(lua_State *L, struct transfer *t, int idx, int owner) {
  lua_Integer i, n;
  const void *from = lua_topointer(L, idx);
  if (owner != 0 && t->headers != NULL && from == t->headers_from) return;
  curl_slist_free_all(t->headers);
  t->headers = NULL;
  t->headers_from = NULL;
  n = (lua_Integer)lua_rawlen(L, idx);
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
  if (owner != 0) { /* anchored before anything can collect it: it is on the stack */
    lua_pushvalue(L, idx);
    lua_setiuservalue(L, owner, HEADERS_SLOT);
    t->headers_from = from;
  }
}

static void set_method(struct transfer *t, const char *method, const char *body, size_t body_len) {
  CURL *e = t->easy;
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
   * Content-Length always frames the request. libcurl reads the Lua string
   * in place: the caller anchors it (rule 2). */
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

void transfer_prepare(lua_State *L, struct transfer *t, int first, int streaming, int owner) {
  size_t method_len, url_len, body_len = 0;
  const char *method = luaL_checklstring(L, first, &method_len);
  const char *url = luaL_checklstring(L, first + 1, &url_len);
  const char *body;
  long ms;
  luaL_checktype(L, first + 2, LUA_TTABLE);
  body = luaL_optlstring(L, first + 3, NULL, &body_len);
  ms = timeout_ms(L, first + 4);
  /* libcurl reads C strings: an embedded NUL would cut them short. */
  luaL_argcheck(L, strlen(method) == method_len && is_token(method), first, "invalid HTTP method");
  luaL_argcheck(L, strlen(url) == url_len && strpbrk(url, "\r\n") == NULL, first + 1, "URL contains CR, LF or NUL");
  /* A transfer left running by an interrupted call ends here. */
  transfer_stop(t);
  load_headers(L, t, first + 2, owner);
  set_method(t, method, body, body_len);
  if (curl_easy_setopt(t->easy, CURLOPT_URL, url) != CURLE_OK) luaL_error(L, "libcurl rejected the URL");
  curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
  /* A stream's timeout is enforced by transfer_wait: until the headers,
   * then as a limit on silence. libcurl's own limit would cut long streams. */
  curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, streaming ? 0L : ms);
  /* libcurl's own 300 s connect limit must not undercut a longer timeout. */
  curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, ms);
  buffer_reset(&t->body, KEEP_BUFFER_BYTES);
  buffer_reset(&t->head, KEEP_BUFFER_BYTES);
  event_queue_clear(&t->events);
  sse_free(&t->sse);
  sse_init(&t->sse, t->max_response_bytes);
  t->streaming = streaming;
  t->status = 0;
  t->headers_done = t->done = t->sse_finished = t->paused = 0;
  t->too_large = t->out_of_memory = t->socket_errno = 0;
  t->result = CURLE_OK;
  t->errbuf[0] = '\0';
  t->last_activity = openai_monotonic();
  t->timeout = (double)ms / 1000.0;
  update_footprint(t);
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

/* ---- waiting ---- */

static void fail_with_timeout(struct transfer *t, const char *what) {
  transfer_stop(t);
  t->done = 1;
  t->result = CURLE_OPERATION_TIMEDOUT;
  snprintf(t->errbuf, sizeof t->errbuf, "no %s within %.3f s", what, t->timeout);
}

/* Runs a pending hook with t busy (rule 5). */
static enum wait_result run_hook(struct interrupt_watch *watch, struct transfer *t) {
  struct connection *c = t->conn;
  int status;
  c->hooks_running++;
  status = interrupt_run(watch);
  c->hooks_running--;
  if (status != LUA_OK) return WAIT_HOOK_ERROR;
  if (c->close_pending || t->close_pending) return WAIT_CLOSED;
  return WAIT_READY;
}

enum wait_result transfer_wait(lua_State *L, struct transfer *t, int (*ready)(const struct transfer *),
                               double since, enum wait_limit limit, const char *what) {
  struct connection *c = t->conn;
  struct interrupt_watch watch;
  enum wait_result result = WAIT_READY;
  interrupt_watch_start(L, &watch);
  t->busy = 1;
  for (;;) {
    long slice = INTERRUPT_SLICE_MS;
    connection_drive(c);
    if (ready(t)) break;
    if (t->paused) { /* nobody else will read it: take the bytes now */
      t->paused = 0;
      curl_easy_pause(t->easy, CURLPAUSE_CONT);
      continue;
    }
    if (limit != WAIT_NO_LIMIT && t->timeout > 0) {
      double start = limit == WAIT_SILENCE && t->last_activity > since ? t->last_activity : since;
      double left = start + t->timeout - openai_monotonic();
      if (left <= 0) {
        fail_with_timeout(t, what);
        result = WAIT_TIMEOUT;
        break;
      }
      if (left * 1000 < slice) slice = (long)(left * 1000) + 1;
    }
    curl_multi_poll(c->multi, NULL, 0, (int)slice, NULL);
    if (interrupt_pending(&watch)) {
      result = run_hook(&watch, t);
      if (result != WAIT_READY) break;
    }
  }
  t->busy = 0;
  /* The outermost waiting frame carries out a close() a hook asked for;
   * a stream's own close is left to stream.c (t->close_pending). */
  if (c->close_pending && c->hooks_running == 0) connection_release(c);
  return result;
}

/* ---- processes (rule 7) ---- */

/* The handles forsaken after a fork are never freed: they stay on this
 * list, kept on purpose, so that memory checkers count them as reachable
 * rather than lost. It is pushed to without a lock: a lock that another
 * thread held at fork() would never be released in the child. */
struct forsaken {
  void *handle;
  struct forsaken *next;
};
static struct forsaken *forsaken_handles;

static void keep_forsaken(void *handle) {
  struct forsaken *node;
  if (handle == NULL) return;
  node = malloc(sizeof *node);
  if (node == NULL) return; /* then it is merely lost: it was never to be freed */
  node->handle = handle;
#if defined(__GNUC__)
  node->next = __atomic_load_n(&forsaken_handles, __ATOMIC_RELAXED);
  while (!__atomic_compare_exchange_n(&forsaken_handles, &node->next, node, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
  }
#else
  node->next = forsaken_handles;
  forsaken_handles = node;
#endif
}

void transfer_forsake(struct transfer *t) {
  keep_forsaken(t->easy);
  t->easy = NULL; /* in the inherited multi handle, or its transfer done there */
  t->active = 0;
  transfer_release(t); /* our own buffers and header list */
  t->conn = NULL;
  t->forked = 1;
}

/* Forgets c's multi handle and its streams' easy handles, which belong to
 * the process that forked this one: no libcurl call touches them, so none
 * of the parent's sockets is read, written or shut down from here. */
static void forsake_inherited(struct connection *c) {
  keep_forsaken(c->multi);
  while (c->streams != NULL) {
    struct transfer *t = c->streams;
    c->streams = t->next_stream;
    t->next_stream = NULL;
    transfer_forsake(t);
  }
  c->open_streams = 0;
  if (c->request.easy != NULL && c->request.active) {
    /* A request cut short left it in the inherited multi handle, on one of
     * the parent's connections: keep only its settings. */
    keep_forsaken(c->request.easy);
    c->request.easy = curl_easy_duphandle(c->request.easy);
    c->request.active = 0;
    if (c->request.easy != NULL) transfer_set_pointers(&c->request);
  }
  c->multi = NULL;
}

const char *connection_claim(struct connection *c) {
  pid_t self;
  if (c->multi == NULL) return NULL; /* closed: nothing of libcurl is left to touch */
  self = getpid();
  if (c->pid == self) return NULL;
  if (c->hooks_running > 0)
    return "a call made on this client before a fork, by another process, still waits here (it ran the debug hook "
           "that forked): the client cannot be used until that call returns";
  forsake_inherited(c);
  c->pid = self;
  if (c->request.easy != NULL) c->multi = curl_multi_init();
  if (c->multi == NULL) {
    connection_release(c);
    return "cannot initialise libcurl";
  }
  return NULL;
}

void connection_release(struct connection *c) {
  if (c->hooks_running > 0) { /* a waiting frame closes it when the hook returns */
    c->close_pending = 1;
    return;
  }
  c->close_pending = 0;
  if (c->multi != NULL && c->pid != getpid()) forsake_inherited(c); /* rule 7 */
  while (c->streams != NULL) {
    struct transfer *t = c->streams;
    c->streams = t->next_stream;
    t->next_stream = NULL;
    openai_stream_abort(t);
  }
  c->open_streams = 0;
  transfer_release(&c->request);
  if (c->multi != NULL) {
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
  }
}
