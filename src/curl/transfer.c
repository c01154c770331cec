/* Transfers on libcurl: callbacks, preparing and starting a request, and
 * waiting. What only streams do is in stream.c, the multi handle in
 * connection.c. The ownership rules are in transfer.h. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "interrupt.h"
#include "transfer.h"
#include "codec/http_head.h"

#define MAX_HEADER_BYTES (256 * 1024)
/* What an easy handle with its connection costs beyond our own buffers:
 * libcurl's receive buffer, its handle and connection state (an idle
 * stream measured 16 kB of resident memory on Linux x86-64). */
#define HANDLE_FOOTPRINT (16 * 1024)

/* ---- memory told to the GC ---- */

void transfer_update_footprint(struct transfer *t) {
  size_t now = 0;
  if (t->easy != NULL) now = HANDLE_FOOTPRINT + t->body.cap + t->head.cap + t->beside;
  if (t->conn != NULL) t->conn->footprint = t->conn->footprint - t->footprint + now;
  t->footprint = now;
}

/* ---- libcurl callbacks: C memory only (rule 3) ---- */

size_t transfer_on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct transfer *t = ud;
  size_t n = size * nmemb, taken = n;
  t->last_activity = openai_monotonic();
  if (n > t->max_response_bytes - t->body.len) {
    t->too_large = 1;
    taken = 0; /* CURLE_WRITE_ERROR ends the transfer */
  } else if (!buffer_append(&t->body, ptr, n)) {
    t->out_of_memory = 1;
    taken = 0;
  }
  transfer_update_footprint(t);
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
      loop_wake(t); /* a stream's head is there */
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

/* Points easy's callbacks' data and error buffer at t (or at nothing). */
static void point_at(CURL *easy, struct transfer *t) {
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, (void *)t);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, (void *)t);
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, (void *)t);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t ? t->errbuf : NULL);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, (void *)t);
}

void transfer_set_pointers(struct transfer *t) {
  point_at(t->easy, t);
}

void transfer_set_defaults(CURL *easy) {
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L); /* hosts run us on threads */
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, transfer_on_body);
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
  if (conn->spare_count > 0) {
    /* An ended transfer's: the client's settings, and the per-transfer
     * options transfer_prepare sets again, but for the write callback a
     * stream replaces. Its footprint moves from the connection to t. */
    t->easy = conn->spares[--conn->spare_count];
    conn->footprint -= HANDLE_FOOTPRINT;
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, transfer_on_body);
  } else {
    /* duphandle copies the client's CA, proxy and other settings. */
    t->easy = curl_easy_duphandle(conn->request.easy);
    if (t->easy == NULL) return 0;
  }
  transfer_set_pointers(t);
  transfer_update_footprint(t);
  return 1;
}

/* Keeps t's easy handle, out of the multi handle, for the connection's
 * next transfer; returns 0 when it has enough (the caller cleans it up).
 * Never the blocking request's handle, nor on a closing connection. */
static int keep_spare(struct transfer *t) {
  struct connection *c = t->conn;
  if (c == NULL || c->multi == NULL || c->close_pending || t == &c->request || t->not_spare ||
      c->spare_count >= TRANSFER_SPARE_HANDLES)
    return 0;
  point_at(t->easy, NULL); /* t's memory may go before the handle does */
  c->spares[c->spare_count++] = t->easy;
  c->footprint += HANDLE_FOOTPRINT; /* still held, by the connection */
  return 1;
}

void transfer_drop_spares(struct connection *c) {
  while (c->spare_count > 0) {
    curl_easy_cleanup(c->spares[--c->spare_count]);
    c->footprint -= HANDLE_FOOTPRINT;
  }
}

void transfer_forsake_spares(struct connection *c) {
  while (c->spare_count > 0) {
    forsaken_keep(c->spares[--c->spare_count]);
    c->footprint -= HANDLE_FOOTPRINT;
  }
}

void transfer_stop(struct transfer *t) {
  if (t->active) {
    if (t->conn && t->conn->multi) curl_multi_remove_handle(t->conn->multi, t->easy);
    t->active = 0;
  }
}

void transfer_release(struct transfer *t) {
  loop_forget(t);
  if (t->easy != NULL) {
    transfer_stop(t);
    if (!keep_spare(t)) curl_easy_cleanup(t->easy);
    t->easy = NULL;
  }
  curl_slist_free_all(t->headers);
  t->headers = NULL;
  buffer_free(&t->body);
  buffer_free(&t->head);
  transfer_update_footprint(t);
}

static int is_token(const char *s) {
  if (*s == '\0') return 0;
  for (; *s; s++)
    if (!http_token_char((unsigned char)*s)) return 0;
  return 1;
}

/* Reads the array of "Name: value" lines at idx into t->headers. Lines with
 * CR, LF or NUL never reach the wire. */
static void load_headers(lua_State *L, struct transfer *t, int idx) {
  lua_Integer i, n;
  curl_slist_free_all(t->headers);
  t->headers = NULL;
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

void transfer_prepare(lua_State *L, struct transfer *t, int first, int keep_headers) {
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
  if (!keep_headers) load_headers(L, t, first + 2);
  set_method(t, method, body, body_len);
  if (curl_easy_setopt(t->easy, CURLOPT_URL, url) != CURLE_OK) luaL_error(L, "libcurl rejected the URL");
  curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, ms);
  /* libcurl's own 300 s connect limit must not undercut a longer timeout. */
  curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, ms);
  buffer_reset(&t->body, KEEP_BUFFER_BYTES);
  buffer_reset(&t->head, KEEP_BUFFER_BYTES);
  t->status = 0;
  t->headers_done = t->done = 0;
  t->too_large = t->out_of_memory = t->socket_errno = 0;
  t->result = CURLE_OK;
  t->errbuf[0] = '\0';
  t->last_activity = openai_monotonic();
  t->timeout = (double)ms / 1000.0;
  transfer_update_footprint(t);
}

int transfer_start(struct transfer *t) {
  if (curl_multi_add_handle(t->conn->multi, t->easy) != CURLM_OK) return 0;
  t->active = 1;
  return 1;
}

/* ---- waiting ---- */

void transfer_fail_timeout(struct transfer *t, const char *what) {
  transfer_stop(t);
  t->done = 1;
  t->result = CURLE_OPERATION_TIMEDOUT;
  loop_wake(t);
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

enum wait_result transfer_wait(lua_State *L, struct transfer *t, enum readiness (*ready)(struct transfer *),
                               double since, enum wait_limit limit, const char *what) {
  struct connection *c = t->conn;
  struct interrupt_watch watch;
  enum wait_result result = WAIT_READY;
  interrupt_watch_start(L, &watch);
  t->busy = 1;
  connection_drive(c);
  for (;;) {
    long slice = INTERRUPT_SLICE_MS;
    enum readiness now = ready(t);
    if (now == READY) break;
    if (now == DRIVE_AGAIN) {
      connection_drive(c);
      continue;
    }
    if (limit != WAIT_NO_LIMIT && t->timeout > 0) {
      double start = limit == WAIT_SILENCE && t->last_activity > since ? t->last_activity : since;
      double left = start + t->timeout - openai_monotonic();
      if (left <= 0) {
        transfer_fail_timeout(t, what);
        result = WAIT_TIMEOUT;
        break;
      }
      if (left * 1000 < slice) slice = (long)(left * 1000) + 1;
    }
    connection_drive_wait(c, slice);
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

void forsaken_keep(void *handle) {
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
  forsaken_keep(t->easy);
  t->easy = NULL; /* in the inherited multi handle, or its transfer done there */
  t->active = 0;
}
