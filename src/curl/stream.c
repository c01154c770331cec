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

#include <string.h>

#include "interrupt.h"
#include "transfer.h"
#include "codec/sse_decoder.h"

static struct transfer *check_stream(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, OPENAI_STREAM_MT);
}

static void unlink_stream(struct transfer *t) {
  struct transfer **link;
  if (t->conn == NULL) return;
  for (link = &t->conn->streams; *link != NULL; link = &(*link)->next_stream) {
    if (*link == t) {
      *link = t->next_stream;
      t->conn->open_streams--;
      break;
    }
  }
  t->next_stream = NULL;
}

void openai_stream_abort(struct transfer *t) {
  transfer_release(t);
  t->conn = NULL;
}

/* Ends the stream at index idx: aborts the transfer, drops the body. */
static void close_now(lua_State *L, struct transfer *t, int idx) {
  unlink_stream(t);
  openai_stream_abort(t);
  t->close_pending = 0;
  lua_pushnil(L);
  lua_setiuservalue(L, idx, BODY_SLOT);
}

/* close(), __gc and __close; deferred while a hook runs during a read of
 * this stream (the reading frame closes it then). */
static int stream_close(lua_State *L) {
  struct transfer *t = check_stream(L, 1);
  /* In a forked child the stream is forsaken (rule 7 of transfer.h): with
   * its connection, or alone while a call of the parent still waits on
   * that connection here. */
  if (t->conn != NULL && connection_claim(t->conn) != NULL && t->conn != NULL && !t->busy) {
    unlink_stream(t);
    transfer_forsake(t);
  }
  if (t->busy)
    t->close_pending = 1;
  else
    close_now(L, t, 1);
  return 0;
}

static int stream_tostring(lua_State *L) {
  struct transfer *t = check_stream(L, 1);
  lua_pushfstring(L, "openai.Stream (%s)", t->easy ? (t->done ? "finished" : "open") : "closed");
  return 1;
}

/* Pops the next event and pushes its name (or nil) and data (rule 4 of
 * transfer.h: the event is ours while it becomes Lua strings). */
static int push_event(lua_State *L, struct transfer *t) {
  struct event *e;
  if (!lua_checkstack(L, 4)) return luaL_error(L, "stack overflow");
  e = event_queue_pop(&t->events);
  transfer_resume_reading(t);
  return sse_push_event(L, e, 0);
}

static int push_failure(lua_State *L, struct transfer *t) {
  struct outcome o;
  outcome_take(&o, t);
  return outcome_push(L, &o, OUTCOME_FAILURE, 0, NULL);
}

static int headers_ready(const struct transfer *t) {
  return t->done || t->headers_done;
}

static int finished(const struct transfer *t) {
  return t->done;
}

static int event_ready(const struct transfer *t) {
  return t->done || t->events.head != NULL || t->too_large || t->out_of_memory;
}

/* conn:stream(method, url, headers, body|nil, timeout_seconds)
 *   -> status, headers, Stream          (2xx: the body is read with read())
 *   -> status, headers, body[, err]     (other statuses: the whole body)
 *   -> nil, kind, message               (no response; kinds as conn:request)
 * The timeout bounds the wait for the headers, then each read's silence. */
int openai_stream_open(lua_State *L) {
  struct connection *c = luaL_checkudata(L, 1, OPENAI_CONNECTION_MT);
  struct transfer *t;
  int stream_index;
  double started;
  enum wait_result waited;
  struct outcome o;
  const char *why;
  /* Finalizers may close the client at any allocation (the accounting, the
   * new userdata): the call then ends as aborted. */
  if (c->multi != NULL) connection_account(L, c);
  lua_settop(L, 6);
  t = lua_newuserdatauv(L, sizeof *t, 2);
  stream_index = lua_gettop(L);
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, OPENAI_STREAM_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, stream_index, CONNECTION_SLOT); /* the connection outlives the stream */
  if (c->multi == NULL) return outcome_push_closed(L, "client");
  if ((why = connection_claim(c)) != NULL) return luaL_error(L, "%s", why);
  if (!transfer_init_from(t, c)) return luaL_error(L, "cannot initialise libcurl");
  t->next_stream = c->streams;
  c->streams = t;
  c->open_streams++;
  transfer_prepare(L, t, 2, 1, 0);
  lua_pushvalue(L, 5);
  lua_setiuservalue(L, stream_index, BODY_SLOT); /* rule 2: for the stream's life */
  if (!transfer_start(t)) return luaL_error(L, "cannot start the transfer");
  started = openai_monotonic();

  waited = transfer_wait(L, t, headers_ready, started, WAIT_FIXED, "response");
  if (waited == WAIT_READY && t->headers_done && t->status >= 200 && t->status < 300) {
    int n;
    outcome_take(&o, t); /* the head only: the body goes to the SSE decoder */
    n = outcome_push(L, &o, OUTCOME_HEAD, 0, NULL);
    lua_pushvalue(L, stream_index);
    return n + 1;
  }
  if (waited == WAIT_READY && t->headers_done)
    waited = transfer_wait(L, t, finished, started, WAIT_FIXED, "response");
  if (waited != WAIT_HOOK_ERROR && waited != WAIT_CLOSED) outcome_take(&o, t);
  close_now(L, t, stream_index);
  if (waited == WAIT_HOOK_ERROR) return lua_error(L);
  if (waited == WAIT_CLOSED) return outcome_push_closed(L, "client");
  /* an error status: the Lua layer decides */
  return outcome_push(L, &o, o.headers_done && o.result == CURLE_OK && !o.out_of_memory && !o.too_large
                                 ? OUTCOME_RESPONSE : OUTCOME_FAILURE, 1, NULL);
}

/* stream:read([wait]) -> event|nil, data   one event (event is its "event" field)
 *                     -> nil                the stream ended
 *                     -> nil, kind, message it failed (kinds as conn:request;
 *                                           "closed" once closed; "connection"
 *                                           in a process forked after it opened)
 *                     -> nil, "pending"     with wait == false: nothing has
 *                                           arrived yet */
static int stream_read(lua_State *L) {
  struct transfer *t = check_stream(L, 1);
  int wait = lua_isnoneornil(L, 2) || lua_toboolean(L, 2);
  int driven = 0;
  double called = openai_monotonic();
  if (t->conn != NULL && t->conn->multi != NULL) connection_account(L, t->conn); /* may run finalizers */
  /* A stream of the parent is forsaken here, whether or not the connection
   * gets its new multi handle (rule 7 of transfer.h). */
  if (t->conn != NULL) {
    const char *why = connection_claim(t->conn);
    if (why != NULL && !t->forked) return luaL_error(L, "%s", why);
  }
  if (t->forked) {
    lua_pushnil(L);
    lua_pushliteral(L, "connection");
    lua_pushliteral(L, "the stream was opened by another process, before a fork: only that process can read it");
    return 3;
  }
  if (t->busy) return luaL_error(L, "the stream is busy: a read of it is waiting (a read from a debug hook?)");
  lua_settop(L, 1);
  for (;;) {
    enum wait_result waited;
    if (t->events.head != NULL) return push_event(L, t);
    if (t->too_large || t->out_of_memory) {
      unlink_stream(t);
      transfer_stop(t);
      return push_failure(L, t);
    }
    if (t->easy == NULL) return outcome_push_closed(L, "stream");
    if (t->done) {
      if (t->result != CURLE_OK) return push_failure(L, t);
      if (!t->sse_finished) { /* flush an event the server did not end */
        t->sse_finished = 1;
        transfer_finish_events(t);
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
      transfer_resume_reading(t);
      connection_drive(t->conn);
      driven = 1;
      continue;
    }
    waited = transfer_wait(L, t, event_ready, called, WAIT_SILENCE, "data");
    if (t->close_pending) close_now(L, t, 1); /* a hook closed it */
    if (waited == WAIT_HOOK_ERROR) return lua_error(L);
    if (waited == WAIT_CLOSED) return outcome_push_closed(L, "stream");
  }
}

static const luaL_Reg stream_methods[] = {
  {"read", stream_read},
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
