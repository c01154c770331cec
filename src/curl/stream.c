/* openai.Stream: a server-sent-events response read one event at a time.
 *
 * Pull-based: each read() drives libcurl (the connection's multi handle)
 * only until one event is complete. The write callback feeds the SSE
 * decoder, which queues complete events in C memory; when more than
 * 256 KiB wait unread the transfer pauses, so memory stays bounded whatever
 * the reading pattern. The stream keeps its Connection alive through a user
 * value; closing the connection aborts the stream. The ownership rules are
 * in transfer.h. */
#define _POSIX_C_SOURCE 200809L

#include "stream.h"

#include <string.h>

#include "interrupt.h"
#include "transfer.h"
#include "codec/sse_decoder.h"

/* A stream stops reading from the network while this much is unread, and
 * reads again once it is down to the low mark. */
#define EVENT_QUEUE_PAUSE_BYTES (256 * 1024)
#define EVENT_QUEUE_RESUME_BYTES (64 * 1024)

static struct stream *check_stream(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, OPENAI_STREAM_MT);
}

/* The stream whose transfer t is: its first member. */
static struct stream *stream_of(struct transfer *t) {
  return (struct stream *)(void *)t;
}

/* The transfer's footprint, with the events and the decoder's buffers. */
static void update_footprint(struct stream *s) {
  s->transfer.beside = s->events.bytes + s->sse.line.cap + s->sse.event.cap + s->sse.data.cap;
  transfer_update_footprint(&s->transfer);
}

/* ---- libcurl's write callback: C memory only (rule 3) ---- */

/* A 2xx body goes to the SSE decoder, which queues events straight into
 * s->events; it stops (SSE_STOPPED) only when the queue runs out of
 * memory. Any other status is a response body like a request's. */
static size_t on_stream_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct transfer *t = ud; /* CURLOPT_WRITEDATA: transfer_set_pointers */
  struct stream *s = stream_of(t);
  size_t n = size * nmemb, taken = n;
  if (t->status < 200 || t->status >= 300) return transfer_on_body(ptr, size, nmemb, t);
  t->last_activity = openai_monotonic();
  if (s->events.bytes > EVENT_QUEUE_PAUSE_BYTES) {
    s->paused = 1;
    return CURL_WRITEFUNC_PAUSE; /* libcurl keeps these bytes for later */
  }
  switch (sse_feed(&s->sse, ptr, n, event_queue_emit, &s->events)) {
  case SSE_OK: break;
  case SSE_TOO_LARGE: t->too_large = 1; taken = 0; break;
  default: t->out_of_memory = 1; taken = 0; break;
  }
  update_footprint(s);
  if (s->events.head != NULL || taken == 0) loop_wake(t);
  return taken;
}

/* At the end: delivers the event the server did not end. */
static void finish_events(struct stream *s) {
  switch (sse_finish(&s->sse, event_queue_emit, &s->events)) {
  case SSE_OK: break;
  case SSE_TOO_LARGE: s->transfer.too_large = 1; break;
  default: s->transfer.out_of_memory = 1; break;
  }
  update_footprint(s);
}

/* Lets a paused stream receive again once few events are unread. */
static void resume_reading(struct stream *s) {
  if (s->paused && s->transfer.easy != NULL && s->events.bytes <= EVENT_QUEUE_RESUME_BYTES) {
    s->paused = 0;
    /* may call on_stream_body at once with the bytes it held back */
    curl_easy_pause(s->transfer.easy, CURLPAUSE_CONT);
  }
}

/* ---- lifetime ---- */

/* Frees everything s holds; idempotent. */
static void stream_release(struct stream *s) {
  if (s->paused) s->transfer.not_spare = 1;
  transfer_release(&s->transfer);
  event_queue_clear(&s->events);
  sse_free(&s->sse);
  s->paused = 0;
}

void stream_abort(struct stream *s) {
  stream_release(s);
  s->transfer.conn = NULL;
}

void stream_forsake(struct stream *s) {
  transfer_forsake(&s->transfer);
  stream_abort(s); /* our own buffers and header list */
  s->forked = 1;
}

/* Takes s off its connection's list, if it is on one. */
static void unlink_stream(struct stream *s) {
  if (s->transfer.conn != NULL) connection_remove_stream(s->transfer.conn, s);
}

/* Ends the stream at index idx: aborts the transfer, drops the body. */
static void close_now(lua_State *L, struct stream *s, int idx) {
  unlink_stream(s);
  stream_abort(s);
  s->transfer.close_pending = 0;
  lua_pushnil(L);
  lua_setiuservalue(L, idx, BODY_SLOT);
}

/* close(), __gc and __close; deferred while a hook runs during a read of
 * this stream (the reading frame closes it then). */
static int stream_close(lua_State *L) {
  struct stream *s = check_stream(L, 1);
  struct transfer *t = &s->transfer;
  /* In a forked child the stream is forsaken (rule 7 of transfer.h): with
   * its connection, or alone while a call of the parent still waits on
   * that connection here. */
  if (t->conn != NULL && connection_claim(t->conn) != NULL && t->conn != NULL && !t->busy) {
    unlink_stream(s);
    stream_forsake(s);
  }
  if (t->busy)
    t->close_pending = 1;
  else
    close_now(L, s, 1);
  return 0;
}

static int stream_tostring(lua_State *L) {
  struct transfer *t = &check_stream(L, 1)->transfer;
  lua_pushfstring(L, "openai.Stream (%s)", t->easy ? (t->done ? "finished" : "open") : "closed");
  return 1;
}

/* Pops the next event and pushes its name (or nil) and data (rule 4 of
 * transfer.h: the event is ours while it becomes Lua strings). */
static int push_event(lua_State *L, struct stream *s) {
  struct event *e;
  if (!lua_checkstack(L, 4)) return luaL_error(L, "stack overflow");
  e = event_queue_pop(&s->events);
  s->idle_since = openai_monotonic(); /* the silence counts from here too */
  resume_reading(s);
  return sse_push_event(L, e, 0);
}

/* outcome_take for a stream: its 2xx body was events. */
static void take_outcome(struct outcome *o, struct stream *s) {
  outcome_take(o, &s->transfer);
  o->streaming = 1;
}

static int push_failure(lua_State *L, struct stream *s) {
  struct outcome o;
  take_outcome(&o, s);
  return outcome_push(L, &o, OUTCOME_FAILURE, 0, NULL);
}

/* The tests transfer_wait calls with a stream's transfer. A paused stream
 * that nobody else will read takes its held bytes now. */
static enum readiness unless_paused(struct transfer *t) {
  struct stream *s = stream_of(t);
  if (!s->paused) return NOT_READY;
  s->paused = 0;
  curl_easy_pause(t->easy, CURLPAUSE_CONT);
  return DRIVE_AGAIN;
}

static enum readiness headers_ready(struct transfer *t) {
  return t->done || t->headers_done ? READY : unless_paused(t);
}

static enum readiness finished(struct transfer *t) {
  return t->done ? READY : unless_paused(t);
}

static enum readiness event_ready(struct transfer *t) {
  return t->done || stream_of(t)->events.head != NULL || t->too_large || t->out_of_memory ? READY : unless_paused(t);
}

static int is_2xx(const struct transfer *t) {
  return t->status >= 200 && t->status < 300;
}

double stream_deadline(const struct stream *s) {
  const struct transfer *t = &s->transfer;
  double from;
  if (!s->nonblocking || t->easy == NULL || t->done || s->paused || s->events.head != NULL || t->timeout <= 0)
    return -1;
  if (!t->headers_done || !is_2xx(t)) return s->started + t->timeout;
  from = t->last_activity > s->idle_since ? t->last_activity : s->idle_since;
  return from + t->timeout;
}

void stream_check_deadline(struct stream *s, double now) {
  double at = stream_deadline(s);
  struct transfer *t = &s->transfer;
  if (at >= 0 && now >= at) transfer_fail_timeout(t, t->headers_done && is_2xx(t) ? "data" : "response");
}

/* Makes the Stream (left at the top of the stack, at *at) and starts its
 * transfer; nonblocking puts its connection in the Lua state's Loop first.
 * Returns NULL with nil, "closed", message pushed when the client is
 * closed. */
static struct stream *start_stream(lua_State *L, int nonblocking, int *at) {
  struct connection *c = luaL_checkudata(L, 1, OPENAI_CONNECTION_MT);
  struct loop *l = NULL;
  struct stream *s;
  struct transfer *t;
  int stream_index;
  const char *why;
  /* Finalizers may close the client at any allocation (the accounting, the
   * Loop, the new userdata): the call then ends as aborted. */
  if (c->multi != NULL) connection_account(L, c);
  lua_settop(L, 6);
  if (nonblocking) l = loop_push(L);
  s = lua_newuserdatauv(L, sizeof *s, 2);
  t = &s->transfer;
  stream_index = lua_gettop(L);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, OPENAI_STREAM_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, stream_index, CONNECTION_SLOT); /* the connection outlives the stream */
  if (c->multi == NULL) {
    outcome_push_closed(L, "client");
    return NULL;
  }
  if ((why = connection_claim(c)) != NULL) luaL_error(L, "%s", why);
  if (nonblocking && !loop_join(l, c)) luaL_error(L, "the loop is closed");
  if (!transfer_init_from(t, c)) luaL_error(L, "cannot initialise libcurl");
  connection_add_stream(c, s);
  /* libcurl's callbacks get the stream, which is its transfer's address */
  curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_stream_body);
  transfer_prepare(L, t, 2, 0);
  /* transfer_wait enforces a stream's timeout: until the headers, then as
   * a limit on silence (stream_deadline when nobody waits). libcurl's own
   * limit would cut long streams. */
  curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, 0L);
  sse_init(&s->sse, t->max_response_bytes);
  update_footprint(s);
  lua_pushvalue(L, 5);
  lua_setiuservalue(L, stream_index, BODY_SLOT); /* rule 2: for the stream's life */
  if (!transfer_start(t)) luaL_error(L, "cannot start the transfer");
  s->nonblocking = nonblocking;
  s->started = s->idle_since = openai_monotonic();
  *at = stream_index;
  return s;
}

/* What conn:stream returns once the wait for the head ended as `waited`,
 * with the stream at index at: its head, or what ended it (rule 4). */
static int deliver_head(lua_State *L, struct stream *s, int at, enum wait_result waited) {
  struct transfer *t = &s->transfer;
  struct outcome o;
  s->head_taken = 1;
  if (waited == WAIT_READY && t->headers_done && is_2xx(t)) {
    int n;
    take_outcome(&o, s); /* the head only: the body goes to the SSE decoder */
    n = outcome_push(L, &o, OUTCOME_HEAD, 0, NULL);
    lua_pushvalue(L, at);
    return n + 1;
  }
  if (waited != WAIT_HOOK_ERROR && waited != WAIT_CLOSED) take_outcome(&o, s);
  close_now(L, s, at);
  if (waited == WAIT_HOOK_ERROR) return lua_error(L);
  if (waited == WAIT_CLOSED) return outcome_push_closed(L, "client");
  /* an error status: the Lua layer decides */
  return outcome_push(L, &o, o.headers_done && o.result == CURLE_OK && !o.out_of_memory && !o.too_large
                                 ? OUTCOME_RESPONSE : OUTCOME_FAILURE, 1, NULL);
}

/* conn:stream(method, url, headers, body|nil, timeout_seconds)
 *   -> status, headers, Stream          (2xx: the body is read with read())
 *   -> status, headers, body[, err]     (other statuses: the whole body)
 *   -> nil, kind, message               (no response; kinds as conn:request)
 * The timeout bounds the wait for the headers, then each read's silence. */
int openai_stream_open(lua_State *L) {
  int at;
  struct stream *s = start_stream(L, 0, &at);
  struct transfer *t;
  enum wait_result waited;
  if (s == NULL) return 3;
  t = &s->transfer;
  waited = transfer_wait(L, t, headers_ready, s->started, WAIT_FIXED, "response");
  if (waited == WAIT_READY && t->headers_done && !is_2xx(t))
    waited = transfer_wait(L, t, finished, s->started, WAIT_FIXED, "response");
  return deliver_head(L, s, at, waited);
}

/* conn:stream_start(method, url, headers, body|nil, timeout_seconds)
 *   -> Stream                           at once; head() takes its head
 *   -> nil, "closed", message           the client is closed
 * The Lua state's Loop drives it. The timeout bounds the time to the head
 * (and to a whole non-2xx body) from the start, then each silence while
 * no event waits unread, whether or not a call waits meanwhile. */
int openai_stream_start(lua_State *L) {
  int at;
  if (start_stream(L, 1, &at) == NULL) return 3;
  lua_settop(L, at);
  return 1;
}

static void push_forked(lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "connection");
  lua_pushliteral(L, "the stream was opened by another process, before a fork: only that process can read it");
}

/* Claims s's connection for this process (rule 7 of transfer.h): a stream
 * of the parent is forsaken here, whether or not the connection gets its
 * new multi handle. */
static void claim_stream(lua_State *L, struct stream *s) {
  if (s->transfer.conn != NULL) {
    const char *why = connection_claim(s->transfer.conn);
    if (why != NULL && !s->forked) luaL_error(L, "%s", why);
  }
}

/* Whether stream:head() can answer: the head of a 2xx, or the end. */
static int head_ready(const struct transfer *t) {
  return t->done || (t->headers_done && is_2xx(t));
}

/* stream:head()  (a stream from stream_start)
 *   -> nil, "pending"                   the head has not arrived yet
 *   -> what conn:stream returns         once: status, headers, the stream
 *                                       itself for a 2xx; status, headers,
 *                                       body[, err] for another status
 *                                       (the stream is then closed); or
 *                                       nil, kind, message
 * Looks at the network once, without waiting. Raises once the head was
 * taken (and for a stream from conn:stream, whose head was). */
static int stream_head(lua_State *L) {
  struct stream *s = check_stream(L, 1);
  struct transfer *t = &s->transfer;
  if (t->conn != NULL && t->conn->multi != NULL) connection_account(L, t->conn); /* may run finalizers */
  claim_stream(L, s);
  if (s->forked) {
    push_forked(L);
    return 3;
  }
  if (s->head_taken) return luaL_error(L, "the stream's head was already taken");
  if (t->easy == NULL) return outcome_push_closed(L, "stream");
  lua_settop(L, 1);
  if (!head_ready(t)) {
    connection_drive(t->conn);
    stream_check_deadline(s, openai_monotonic());
  }
  if (!head_ready(t)) {
    lua_pushnil(L);
    lua_pushliteral(L, "pending");
    return 2;
  }
  return deliver_head(L, s, 1, WAIT_READY);
}

/* stream:read([wait]) -> event|nil, data   one event (event is its "event" field)
 *                     -> nil                the stream ended
 *                     -> nil, kind, message it failed (kinds as conn:request;
 *                                           "closed" once closed; "connection"
 *                                           in a process forked after it opened)
 *                     -> nil, "pending"     with wait == false: nothing has
 *                                           arrived yet */
static int stream_read(lua_State *L) {
  struct stream *s = check_stream(L, 1);
  struct transfer *t = &s->transfer;
  int wait = lua_isnoneornil(L, 2) || lua_toboolean(L, 2);
  int driven = 0;
  double called = openai_monotonic();
  if (t->conn != NULL && t->conn->multi != NULL) connection_account(L, t->conn); /* may run finalizers */
  claim_stream(L, s);
  if (s->forked) {
    push_forked(L);
    return 3;
  }
  if (!s->head_taken && t->easy != NULL)
    return luaL_error(L, "the stream's head has not been taken: call head() first");
  if (t->busy) return luaL_error(L, "the stream is busy: a read of it is waiting (a read from a debug hook?)");
  lua_settop(L, 1);
  for (;;) {
    enum wait_result waited;
    if (s->events.head != NULL) return push_event(L, s);
    if (t->too_large || t->out_of_memory) {
      unlink_stream(s);
      transfer_stop(t);
      return push_failure(L, s);
    }
    if (t->easy == NULL) return outcome_push_closed(L, "stream");
    if (t->done) {
      if (t->result != CURLE_OK) return push_failure(L, s);
      if (!s->sse_finished) { /* flush an event the server did not end */
        s->sse_finished = 1;
        finish_events(s);
        lua_pushnil(L);
        lua_setiuservalue(L, 1, BODY_SLOT); /* libcurl is done with it */
        continue;
      }
      lua_pushnil(L);
      return 1;
    }
    if (!wait) { /* only what has arrived: one look at the network, no waiting */
      if (driven) {
        lua_pushnil(L);
        lua_pushliteral(L, "pending");
        return 2;
      }
      resume_reading(s);
      connection_drive(t->conn);
      stream_check_deadline(s, openai_monotonic());
      driven = 1;
      continue;
    }
    waited = transfer_wait(L, t, event_ready, called, WAIT_SILENCE, "data");
    if (t->close_pending) close_now(L, s, 1); /* a hook closed it */
    if (waited == WAIT_HOOK_ERROR) return lua_error(L);
    if (waited == WAIT_CLOSED) return outcome_push_closed(L, "stream");
  }
}

/* stream:ready() -> whether head() (before the head was taken) or read()
 * (after) would answer now without waiting: what arrived, the end, a
 * failure, a close. It drives nothing and allocates nothing (the Lua
 * state's Loop drives a stream from stream_start), so a scheduler can ask
 * every waiting stream on each turn. (A paused stream has events unread,
 * and reading them lets it receive again: push_event.) */
static int stream_ready(lua_State *L) {
  struct stream *s = check_stream(L, 1);
  const struct transfer *t = &s->transfer;
  int ready;
  if (s->forked || t->easy == NULL || t->too_large || t->out_of_memory)
    ready = 1;
  else if (!s->head_taken)
    ready = head_ready(t);
  else
    ready = s->events.head != NULL || t->done;
  lua_pushboolean(L, ready);
  return 1;
}

/* stream:wake_key() -> the light userdata loop:woken() lists the stream
 * by once it moves on. */
static int stream_wake_key(lua_State *L) {
  lua_pushlightuserdata(L, &check_stream(L, 1)->transfer);
  return 1;
}

static const luaL_Reg stream_methods[] = {
  {"read", stream_read},
  {"ready", stream_ready},
  {"wake_key", stream_wake_key},
  {"head", stream_head},
  {"close", stream_close},
  {NULL, NULL}
};

static const luaL_Reg stream_metamethods[] = {
  {"__gc", stream_close},
  {"__close", stream_close},
  {"__tostring", stream_tostring},
  {"__index", NULL}, /* placeholder */
  {NULL, NULL}
};

void openai_stream_register(lua_State *L) {
  openai_register_class(L, OPENAI_STREAM_MT, stream_metamethods, stream_methods);
}
