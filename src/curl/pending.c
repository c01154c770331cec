/* openai.Pending: a request started without waiting, on its own easy
 * handle in its connection's multi handle, so that many can be in flight
 * on one connection at once. The Loop (loop.c) drives it; result() hands
 * over what conn:request would have returned. The ownership rules are in
 * transfer.h. */
#define _POSIX_C_SOURCE 200809L

#include "pending.h"

#include <string.h>

#include "transfer.h"

static struct pending *check_pending(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, OPENAI_PENDING_MT);
}

/* ---- lifetime ---- */

void pending_abort(struct pending *p) {
  transfer_release(&p->transfer);
  p->transfer.conn = NULL;
  if (!p->taken) p->aborted = 1;
}

void pending_forsake(struct pending *p) {
  transfer_forsake(&p->transfer);
  pending_abort(p); /* our own buffers and header list */
  p->forked = 1;
}

/* Frees all p holds and takes it off its connection's list. */
static void release(struct pending *p) {
  if (p->transfer.conn != NULL) connection_remove_pending(p->transfer.conn, p);
  pending_abort(p);
}

/* close(), __gc and __close: aborts a request in flight (libcurl drops its
 * connection), or drops a result not taken. */
static int pending_close(lua_State *L) {
  struct pending *p = check_pending(L, 1);
  struct transfer *t = &p->transfer;
  /* In a forked child it is forsaken (rule 7 of transfer.h): with its
   * connection, or alone while a call of the parent still waits on that
   * connection here. */
  if (t->conn != NULL && connection_claim(t->conn) != NULL && t->conn != NULL) {
    connection_remove_pending(t->conn, p);
    pending_forsake(p);
  }
  if (t->easy != NULL && !p->taken) p->by_owner = 1;
  release(p);
  lua_pushnil(L);
  lua_setiuservalue(L, 1, BODY_SLOT);
  return 0;
}

static int pending_tostring(lua_State *L) {
  struct pending *p = check_pending(L, 1);
  const char *state = p->taken ? "taken" : p->aborted || p->forked ? "closed" : p->transfer.done ? "done" : "in progress";
  lua_pushfstring(L, "openai.Pending (%s)", state);
  return 1;
}

/* pending:done() -> whether result() has something to say: the response
 * (or the failure) is complete, the request was closed, or its result was
 * taken. It does not drive anything: loop:poll() does. */
static int pending_done(lua_State *L) {
  struct pending *p = check_pending(L, 1);
  lua_pushboolean(L, p->taken || p->aborted || p->forked || p->transfer.done);
  return 1;
}

/* pending:wake_key() -> the light userdata loop:woken() lists the pending
 * by once it is done. */
static int pending_wake_key(lua_State *L) {
  lua_pushlightuserdata(L, &check_pending(L, 1)->transfer);
  return 1;
}

/* pending:result()
 *   -> what conn:request(method, url, headers, body, timeout, decode,
 *      request_id_only) returns, with the pending's decode and
 *      request_id_only: status, headers, body[, decode_error]
 *               status, false, object, request_id|nil
 *               nil, kind, message  ("closed": the pending or its
 *                                    connection was closed first)
 * Raises while the request is in progress, and once its result was taken:
 * the response is handed over once, its buffers with it. */
static int pending_result(lua_State *L) {
  struct pending *p = check_pending(L, 1);
  struct transfer *t = &p->transfer;
  struct outcome o;
  int n, failed;
  /* May run finalizers, which may close p or its connection: the state is
   * read only after it. */
  if (t->conn != NULL && t->conn->multi != NULL) connection_account(L, t->conn);
  if (t->conn != NULL) {
    const char *why = connection_claim(t->conn);
    if (why != NULL && !p->forked) return luaL_error(L, "%s", why);
  }
  if (p->taken) return luaL_error(L, "the result was already taken");
  if (p->forked) {
    lua_pushnil(L);
    lua_pushliteral(L, "connection");
    lua_pushliteral(L, "the request was started by another process, before a fork: only that process can take its result");
    return 3;
  }
  if (p->aborted) return outcome_push_closed(L, p->by_owner ? "request" : "client");
  if (!t->done) return luaL_error(L, "the request is still in progress");
  lua_settop(L, 1);
  failed = outcome_failed(t);
  outcome_take(&o, t); /* ours now (rule 4); the rest of p goes at once */
  p->taken = 1;
  release(p);
  n = outcome_push(L, &o, failed ? OUTCOME_FAILURE : p->request_id_only ? OUTCOME_RESPONSE_ID : OUTCOME_RESPONSE,
                   p->decode, NULL);
  lua_pushnil(L);
  lua_setiuservalue(L, 1, BODY_SLOT); /* libcurl is done with it */
  return n;
}

/* conn:start(method, url, headers, body|nil, timeout_seconds[, decode[,
 *            request_id_only]])
 *   -> Pending
 *   -> nil, "closed", message
 * Starts the request (arguments as conn:request's; decode and
 * request_id_only default to true) and returns at once; the Lua state's
 * Loop drives it from then on. The timeout is libcurl's limit on the
 * whole request, as for conn:request. */
int openai_pending_start(lua_State *L) {
  struct connection *c = luaL_checkudata(L, 1, OPENAI_CONNECTION_MT);
  struct loop *l;
  struct pending *p;
  struct transfer *t;
  int idx;
  const char *why;
  /* Finalizers may close the client at any allocation (the accounting, the
   * Loop, the new userdata): the call then ends as aborted. */
  int decode = lua_isnoneornil(L, 7) || lua_toboolean(L, 7);
  int request_id_only = decode && (lua_isnoneornil(L, 8) || lua_toboolean(L, 8));
  if (c->multi != NULL) connection_account(L, c);
  lua_settop(L, 6);
  l = loop_push(L);
  p = lua_newuserdatauv(L, sizeof *p, 2);
  idx = lua_gettop(L);
  memset(p, 0, sizeof *p);
  p->decode = decode;
  p->request_id_only = request_id_only;
  t = &p->transfer;
  luaL_setmetatable(L, OPENAI_PENDING_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, idx, CONNECTION_SLOT); /* the connection outlives the pending */
  if (c->multi == NULL) return outcome_push_closed(L, "client");
  if ((why = connection_claim(c)) != NULL) return luaL_error(L, "%s", why);
  if (!loop_join(l, c)) return luaL_error(L, "the loop is closed");
  if (!transfer_init_from(t, c)) return luaL_error(L, "cannot initialise libcurl");
  connection_add_pending(c, p);
  transfer_prepare(L, t, 2, 0);
  lua_pushvalue(L, 5);
  lua_setiuservalue(L, idx, BODY_SLOT); /* rule 2: until the transfer stops */
  if (!transfer_start(t)) return luaL_error(L, "cannot start the transfer");
  lua_settop(L, idx);
  return 1;
}

void openai_pending_register(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"done", pending_done},
    {"ready", pending_done}, /* what openai.tasks asks of what a task waits for */
    {"wake_key", pending_wake_key},
    {"result", pending_result},
    {"close", pending_close},
    {NULL, NULL}
  };
  static const luaL_Reg metamethods[] = {
    {"__gc", pending_close},
    {"__close", pending_close},
    {"__tostring", pending_tostring},
    {"__index", NULL}, /* placeholder */
    {NULL, NULL}
  };
  openai_register_class(L, OPENAI_PENDING_MT, metamethods, methods);
}
