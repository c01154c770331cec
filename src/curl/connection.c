/* openai.Connection: a client's HTTP transport over libcurl, and its
 * blocking request. Each connection owns one multi handle, where the
 * connection cache (keep-alive, TLS sessions) lives, shared by the client's
 * requests and streams, and the list of its open streams. The ownership
 * rules are in transfer.h. */
#define _POSIX_C_SOURCE 200809L

#include "connection.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "codec/json.h"
#include "transfer.h"

/* ---- memory and sockets told to the GC ---- */

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

/* ---- the list of open streams ---- */

void connection_add_stream(struct connection *c, struct stream *s) {
  s->next = c->streams;
  c->streams = s;
  c->open_streams++;
}

void connection_remove_stream(struct connection *c, struct stream *s) {
  struct stream **link;
  for (link = &c->streams; *link != NULL; link = &(*link)->next) {
    if (*link == s) {
      *link = s->next;
      c->open_streams--;
      break;
    }
  }
  s->next = NULL;
}

void connection_add_pending(struct connection *c, struct pending *p) {
  p->next = c->pendings;
  c->pendings = p;
}

void connection_remove_pending(struct connection *c, struct pending *p) {
  struct pending **link;
  for (link = &c->pendings; *link != NULL; link = &(*link)->next) {
    if (*link == p) {
      *link = p->next;
      break;
    }
  }
  p->next = NULL;
}

/* Takes the first pending off the list, or NULL. */
static struct pending *pop_pending(struct connection *c) {
  struct pending *p = c->pendings;
  if (p != NULL) connection_remove_pending(c, p);
  return p;
}

/* Takes the first stream off the list, or NULL. */
static struct stream *pop_stream(struct connection *c) {
  struct stream *s = c->streams;
  if (s != NULL) connection_remove_stream(c, s);
  return s;
}

/* ---- processes (rule 7) ---- */

/* Forgets c's multi handle and its streams' easy handles, which belong to
 * the process that forked this one: no libcurl call touches them, so none
 * of the parent's sockets is read, written or shut down from here. */
static void forsake_inherited(struct connection *c) {
  struct stream *s;
  struct pending *p;
  forsaken_keep(c->multi);
  transfer_forsake_spares(c);
  connection_forget_sockets(c); /* no epoll_ctl: the set is the parent's too */
  while ((s = pop_stream(c)) != NULL) stream_forsake(s);
  while ((p = pop_pending(c)) != NULL) pending_forsake(p);
  if (c->request.easy != NULL && c->request.active) {
    /* A request cut short left it in the inherited multi handle, on one of
     * the parent's connections: keep only its settings. */
    CURL *copy = curl_easy_duphandle(c->request.easy);
    transfer_forsake(&c->request);
    c->request.easy = copy;
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
  connection_watch(c);
  return NULL;
}

void connection_release(struct connection *c) {
  struct stream *s;
  struct pending *p;
  if (c->hooks_running > 0) { /* a waiting frame closes it when the hook returns */
    c->close_pending = 1;
    return;
  }
  c->close_pending = 0;
  if (c->multi != NULL && c->pid != getpid()) forsake_inherited(c); /* rule 7 */
  connection_leave_loop(c); /* before libcurl closes the sockets */
  while ((s = pop_stream(c)) != NULL) stream_abort(s);
  while ((p = pop_pending(c)) != NULL) pending_abort(p);
  c->headers_from = NULL; /* before the list goes (rule 6) */
  transfer_release(&c->request);
  transfer_drop_spares(c); /* the streams' and pendings' came back there */
  if (c->multi != NULL) {
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
  }
  connection_forget_sockets(c); /* what the cleanup did not report removed */
}

/* ---- the Connection userdata ---- */

static int connection_close(lua_State *L) {
  struct connection *c = luaL_checkudata(L, 1, OPENAI_CONNECTION_MT);
  connection_release(c);
  if (c->multi == NULL) { /* not deferred: the body and header lines may go */
    lua_pushnil(L);
    lua_setiuservalue(L, 1, BODY_SLOT);
    lua_pushnil(L);
    lua_setiuservalue(L, 1, HEADERS_SLOT);
  }
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

/* A proxy host: a dotted-quad IPv4 address, an [IPv6] address (libcurl's
 * parser has checked it), or a host name of labels of letters, digits, '-'
 * and '_' (or UTF-8, which libcurl turns into IDNA), none empty and none
 * starting or ending with '-'. */
static int proxy_host_is_valid(const char *host) {
  const char *p;
  if (host[0] == '[') return 1;
  if (host[strspn(host, "0123456789.")] == '\0') {
    int parts = 0;
    for (p = host; parts < 5; p++) {
      size_t digits = strspn(p, "0123456789");
      if (digits == 0 || digits > 3 || atoi(p) > 255) return 0;
      parts++;
      p += digits;
      if (*p == '\0') break;
    }
    return parts == 4;
  }
  for (p = host; *p != '\0';) {
    size_t n = 0;
    while (p[n] != '\0' && p[n] != '.') {
      unsigned char ch = (unsigned char)p[n];
      if (!(ch >= 0x80 || ch == '-' || ch == '_' || (ch >= '0' && ch <= '9') || ((ch | 32) >= 'a' && (ch | 32) <= 'z')))
        return 0;
      n++;
    }
    if (n == 0 || p[0] == '-' || p[n - 1] == '-') return 0;
    p += n;
    if (*p == '.') p++;
  }
  return 1;
}

/* Whether `proxy` is a proxy URL libcurl can use, and nothing more:
 * [scheme://][user[:password]@]host[:port][/], the scheme one libcurl
 * speaks to proxies, the port 1-65535. libcurl's own parser (proxies are
 * URLs whose scheme defaults to http) reads it. "" means no proxy. */
static int proxy_is_valid(const char *proxy) {
  static const char *const schemes[] = {"http", "https", "socks4", "socks4a", "socks5", "socks5h", NULL};
  CURLU *url;
  char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL, *fragment = NULL;
  int valid = 0;
  if (*proxy == '\0') return 1;
  url = curl_url();
  if (url == NULL) return 0;
  if (curl_url_set(url, CURLUPART_URL, proxy, CURLU_NON_SUPPORT_SCHEME | CURLU_GUESS_SCHEME) == CURLUE_OK &&
      curl_url_get(url, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(url, CURLUPART_HOST, &host, 0) == CURLUE_OK && proxy_host_is_valid(host) &&
      (curl_url_get(url, CURLUPART_PORT, &port, 0) != CURLUE_OK || (atoi(port) >= 1 && atoi(port) <= 65535)) &&
      (curl_url_get(url, CURLUPART_PATH, &path, 0) != CURLUE_OK || strcmp(path, "/") == 0 || path[0] == '\0') &&
      curl_url_get(url, CURLUPART_QUERY, &query, 0) != CURLUE_OK &&
      curl_url_get(url, CURLUPART_FRAGMENT, &fragment, 0) != CURLUE_OK) {
    int i;
    for (i = 0; schemes[i] != NULL; i++)
      if (strcmp(scheme, schemes[i]) == 0) valid = 1;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_free(path);
  curl_free(query);
  curl_free(fragment);
  curl_url_cleanup(url);
  return valid;
}

/* core.valid_proxy(url) -> boolean */
static int core_valid_proxy(lua_State *L) {
  size_t len;
  const char *proxy = luaL_checklstring(L, 1, &len);
  lua_pushboolean(L, strlen(proxy) == len && proxy_is_valid(proxy));
  return 1;
}

/* Never echoes the value: a proxy URL may hold a password. */
static void set_string_option(lua_State *L, CURL *easy, int opts, const char *field, CURLoption option) {
  if (lua_getfield(L, opts, field) == LUA_TSTRING) {
    size_t len;
    const char *value = lua_tolstring(L, -1, &len);
    if (option == CURLOPT_PROXY && (strlen(value) != len || !proxy_is_valid(value)))
      luaL_error(L, "option 'proxy' is not a valid proxy URL");
    if (strlen(value) != len) luaL_error(L, "option '%s' contains NUL", field);
    if (curl_easy_setopt(easy, option, value) != CURLE_OK) luaL_error(L, "libcurl rejected option '%s'", field);
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "option '%s' must be a string", field);
  }
  lua_pop(L, 1);
}

/* A positive integer option, or the default when absent. */
static size_t size_option(lua_State *L, int opts, const char *field, size_t default_value) {
  size_t value = default_value;
  if (lua_getfield(L, opts, field) != LUA_TNIL) {
    int isint;
    lua_Integer given = lua_tointegerx(L, -1, &isint);
    if (!isint || given <= 0) luaL_error(L, "option '%s' must be a positive integer", field);
    value = (size_t)given;
  }
  lua_pop(L, 1);
  return value;
}

/* core.connection([opts]) -> Connection
 * opts: ca_file, ca_path, proxy (strings; proxy "" ignores the proxy
 * environment variables), max_response_bytes, max_response_values
 * (positive integers). */
static int connection_new(lua_State *L) {
  struct connection *c;
  int has_opts = !lua_isnoneornil(L, 1);
  if (has_opts) luaL_checktype(L, 1, LUA_TTABLE);
  c = lua_newuserdatauv(L, sizeof *c, 2); /* BODY_SLOT, HEADERS_SLOT */
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, OPENAI_CONNECTION_MT);
  c->request.conn = c;
  c->request.max_response_bytes = OPENAI_DEFAULT_MAX_RESPONSE_BYTES;
  c->request.max_response_values = OPENAI_JSON_MAX_VALUES;
  c->request.easy = curl_easy_init();
  c->multi = curl_multi_init();
  c->pid = getpid();
  c->timer_at = -1;
  if (c->request.easy == NULL || c->multi == NULL) {
    connection_release(c);
    return luaL_error(L, "cannot initialise libcurl");
  }
  connection_watch(c);
  transfer_set_defaults(c->request.easy);
  transfer_set_pointers(&c->request);
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
    c->request.max_response_bytes = size_option(L, 1, "max_response_bytes", c->request.max_response_bytes);
    c->request.max_response_values = size_option(L, 1, "max_response_values", c->request.max_response_values);
  }
  return 1;
}

static enum readiness finished(struct transfer *t) {
  return t->done ? READY : NOT_READY;
}

/* transfer_prepare for the request transfer, which keeps its header list
 * for the next request that passes the same table (rule 6). */
static void prepare_request(lua_State *L, struct connection *c) {
  const void *lines = lua_topointer(L, 4);
  int same = c->request.headers != NULL && lines == c->headers_from;
  if (!same) c->headers_from = NULL; /* an error while the list is built leaves no match */
  transfer_prepare(L, &c->request, 2, same);
  if (same) return;
  lua_pushvalue(L, 4); /* anchored before anything can collect it: it is on the stack */
  lua_setiuservalue(L, 1, HEADERS_SLOT);
  c->headers_from = lines;
}

/* conn:request(method, url, headers, body|nil, timeout_seconds, decode, request_id_only)
 *   -> status, headers, body[, decode_error]
 *   -> status, false, object, request_id|nil
 *                           with decode and request_id_only, for a 2xx
 *                           whose body decodes to a JSON object (the
 *                           x-request-id value, not the headers table)
 *   -> nil, kind, message   kind: "timeout", "connection", "too_large",
 *                           "config", "fd_limit", "closed" (the connection
 *                           is closed, or was closed during the call)
 * headers is a table of "Name: value" lines, never changed once passed:
 * the next request with the same table reuses the list built from it
 * (rule 6 of transfer.h). */
static int connection_request(lua_State *L) {
  struct connection *c = luaL_checkudata(L, 1, OPENAI_CONNECTION_MT);
  struct transfer *t = &c->request;
  int decode = lua_toboolean(L, 7);
  enum outcome_form form = decode && lua_toboolean(L, 8) ? OUTCOME_RESPONSE_ID : OUTCOME_RESPONSE;
  struct outcome o;
  enum wait_result waited;
  const char *why;
  /* A finalizer may close the client at any allocation before this (in
   * the Lua layer, or the accounting): the call then ends as aborted. */
  if (c->multi != NULL) connection_account(L, c);
  if (c->multi == NULL) return outcome_push_closed(L, "client");
  if ((why = connection_claim(c)) != NULL) return luaL_error(L, "%s", why);
  if (t->busy) return luaL_error(L, "the connection is busy: a call on it is waiting (a call from a debug hook?)");
  prepare_request(L, c);
  lua_settop(L, 7);
  lua_pushvalue(L, 5);
  lua_setiuservalue(L, 1, BODY_SLOT); /* rule 2: until the transfer stops */
  if (!transfer_start(t)) return luaL_error(L, "cannot start the transfer");
  waited = transfer_wait(L, t, finished, 0, WAIT_NO_LIMIT, "response");
  if (waited == WAIT_HOOK_ERROR) {
    transfer_stop(t); /* an interrupted call leaves nothing running */
    return lua_error(L);
  }
  if (waited == WAIT_CLOSED) {
    transfer_stop(t);
    return outcome_push_closed(L, "client");
  }
  lua_pushnil(L);
  lua_setiuservalue(L, 1, BODY_SLOT); /* libcurl is done with it */
  outcome_take(&o, t);
  return outcome_push(L, &o, outcome_failed(t) ? OUTCOME_FAILURE : form, decode, t);
}

/* core.connection and core.valid_proxy; the Connection class with its own
 * methods and `more` (those of other parts: conn:stream). */
void openai_connection_register(lua_State *L, const luaL_Reg *more) {
  static const luaL_Reg methods[] = {
    {"request", connection_request},
    {"close", connection_close},
    {NULL, NULL}
  };
  static const luaL_Reg metamethods[] = {
    {"__gc", connection_close},
    {"__close", connection_close},
    {"__tostring", connection_tostring},
    {"__index", NULL}, /* placeholder */
    {NULL, NULL}
  };
  openai_register_class(L, OPENAI_CONNECTION_MT, metamethods, methods);
  luaL_getmetatable(L, OPENAI_CONNECTION_MT);
  lua_getfield(L, -1, "__index");
  luaL_setfuncs(L, more, 0);
  lua_pop(L, 2);
  lua_pushcfunction(L, connection_new);
  lua_setfield(L, -2, "connection");
  lua_pushcfunction(L, core_valid_proxy);
  lua_setfield(L, -2, "valid_proxy");
}
