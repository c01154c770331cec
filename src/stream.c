/* openai.Stream: a server-sent-events response read one event at a time.
 *
 * Pull-based: each read() drives libcurl (the connection's multi handle)
 * only until one event is complete. The write callback feeds the SSE
 * decoder, which queues complete events in plain C memory; when too much is
 * queued the transfer pauses, so memory stays bounded by one event plus one
 * network read. The stream keeps its Connection alive through its user
 * value; closing the connection aborts the stream. */
#define _POSIX_C_SOURCE 200809L

#include <string.h>

#include "transfer.h"

static struct transfer *check_stream(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, OPENAI_STREAM_MT);
}

static void unlink_stream(struct transfer *t) {
  struct transfer **link;
  if (t->conn == NULL) return;
  for (link = &t->conn->streams; *link != NULL; link = &(*link)->next_stream) {
    if (*link == t) {
      *link = t->next_stream;
      break;
    }
  }
  t->next_stream = NULL;
}

void openai_stream_abort(struct transfer *t) {
  transfer_release(t);
  t->conn = NULL;
}

/* close(), __gc and __close: aborts the transfer if it is still running. */
static int stream_close(lua_State *L) {
  struct transfer *t = check_stream(L, 1);
  unlink_stream(t);
  openai_stream_abort(t);
  return 0;
}

static int stream_tostring(lua_State *L) {
  struct transfer *t = check_stream(L, 1);
  lua_pushfstring(L, "openai.Stream (%s)", t->easy ? (t->done ? "finished" : "open") : "closed");
  return 1;
}

/* Pops the next queued event: pushes its name (or nil) and data. */
static int pop_event(lua_State *L, struct transfer *t) {
  const char *p = t->events.data + t->events_read;
  size_t event_len, data_len;
  char has_event = p[0];
  memcpy(&event_len, p + 1, sizeof event_len);
  p += 1 + sizeof event_len;
  if (has_event)
    lua_pushlstring(L, p, event_len);
  else
    lua_pushnil(L);
  p += event_len;
  memcpy(&data_len, p, sizeof data_len);
  p += sizeof data_len;
  lua_pushlstring(L, p, data_len);
  t->events_read = (size_t)(p + data_len - t->events.data);
  if (t->events_read == t->events.len) { /* all read: reuse the memory */
    t->events.len = 0;
    t->events_read = 0;
  }
  return 2;
}

static void fail_with_timeout(struct transfer *t, const char *what) {
  transfer_stop(t);
  t->done = 1;
  t->result = CURLE_OPERATION_TIMEDOUT;
  snprintf(t->errbuf, sizeof t->errbuf, "no %s within %.3f s", what, t->timeout);
}

/* Drives the connection until `ready` holds for t or the deadline passes. */
static void drive_until(struct transfer *t, int (*ready)(const struct transfer *), double deadline, const char *what) {
  while (!ready(t)) {
    double left;
    connection_drive(t->conn);
    if (ready(t)) break;
    if (t->paused) { /* nobody else will read it: take the bytes now */
      t->paused = 0;
      curl_easy_pause(t->easy, CURLPAUSE_CONT);
      continue;
    }
    left = deadline - openai_monotonic();
    if (t->timeout > 0 && left <= 0) {
      fail_with_timeout(t, what);
      break;
    }
    connection_wait(t->conn, t->timeout > 0 && left < 1.0 ? (long)(left * 1000) + 1 : 1000);
  }
}

static int headers_ready(const struct transfer *t) {
  return t->done || t->headers_done;
}

static int finished(const struct transfer *t) {
  return t->done;
}

static int event_ready(const struct transfer *t) {
  return t->done || t->events.len > t->events_read || t->too_large || t->out_of_memory;
}

/* conn:stream(method, url, headers, body|nil, timeout_seconds)
 *   -> status, headers, Stream          (2xx: the body is read with read())
 *   -> status, headers, body[, err]     (other statuses: the whole body)
 *   -> nil, kind, message               (no response)
 * The timeout bounds the wait for the headers, then each read(). */
int openai_stream_open(lua_State *L) {
  struct connection *c = openai_check_connection(L, 1);
  struct transfer *t = lua_newuserdatauv(L, sizeof *t, 1);
  int stream_index = lua_gettop(L);
  double started;
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, OPENAI_STREAM_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, stream_index, 1); /* the connection outlives the stream */
  if (!transfer_init_from(t, c)) return luaL_error(L, "cannot initialise libcurl");
  t->next_stream = c->streams;
  c->streams = t;
  transfer_prepare(L, t, 2, 1);
  if (!transfer_start(t)) return luaL_error(L, "cannot start the transfer");
  started = openai_monotonic();

  drive_until(t, headers_ready, started + t->timeout, "response");
  if (t->headers_done && t->status >= 200 && t->status < 300) {
    lua_pushinteger(L, t->status);
    transfer_push_headers(L, t);
    lua_pushvalue(L, stream_index);
    return 3;
  }
  {
    int n;
    if (t->headers_done) drive_until(t, finished, started + t->timeout, "response");
    if (t->headers_done && t->done && t->result == CURLE_OK && !t->out_of_memory)
      n = transfer_push_response(L, t, 1); /* an error status: the Lua layer decides */
    else
      n = transfer_push_failure(L, t);
    unlink_stream(t);
    openai_stream_abort(t);
    return n;
  }
}

/* stream:read([wait]) -> event|nil, data   one event (event is its "event" field)
 *                     -> nil                the stream ended
 *                     -> nil, kind, message it failed (kind as in conn:request)
 *                     -> nil, "pending"     with wait == false: nothing has
 *                                           arrived yet */
static int stream_read(lua_State *L) {
  struct transfer *t = check_stream(L, 1);
  int wait = lua_isnoneornil(L, 2) || lua_toboolean(L, 2);
  int driven = 0;
  for (;;) {
    if (t->events.len > t->events_read) return pop_event(L, t);
    if (t->too_large || t->out_of_memory) {
      unlink_stream(t);
      transfer_stop(t);
      return transfer_push_failure(L, t);
    }
    if (t->easy == NULL) {
      lua_pushnil(L);
      lua_pushliteral(L, "closed");
      lua_pushliteral(L, "the stream was closed");
      return 3;
    }
    if (t->done) {
      if (t->result != CURLE_OK) return transfer_push_failure(L, t);
      if (!t->sse_finished) { /* flush an event the server did not end */
        t->sse_finished = 1;
        transfer_finish_events(t);
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
      if (t->paused) {
        t->paused = 0;
        curl_easy_pause(t->easy, CURLPAUSE_CONT);
      }
      connection_drive(t->conn);
      driven = 1;
      continue;
    }
    drive_until(t, event_ready, t->last_activity + t->timeout, "data");
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
  luaL_newmetatable(L, OPENAI_STREAM_MT);
  luaL_setfuncs(L, stream_metamethods, 0);
  luaL_newlib(L, stream_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
