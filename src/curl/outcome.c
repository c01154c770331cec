/* A finished transfer's results as Lua values. Results are first moved out
 * of the transfer (outcome_take, no allocation), then converted inside one
 * protected call: Lua code that runs meanwhile (a finalizer) cannot touch
 * them, and a memory error cannot leak them (rule 4 of transfer.h). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec/http_head.h"
#include "codec/json.h"
#include "codec/sse_decoder.h"
#include "transfer.h"

int outcome_failed(const struct transfer *t) {
  return t->result != CURLE_OK || t->out_of_memory || t->too_large || !t->headers_done;
}

void outcome_take(struct outcome *o, struct transfer *t) {
  o->status = t->status;
  o->headers_done = t->headers_done;
  o->streaming = 0; /* a stream sets it: stream.c */
  o->too_large = t->too_large;
  o->out_of_memory = t->out_of_memory;
  o->socket_errno = t->socket_errno;
  o->result = t->result;
  o->max_response_bytes = t->max_response_bytes;
  o->max_response_values = t->max_response_values;
  o->head = t->head;
  o->body = t->body;
  memset(&t->head, 0, sizeof t->head);
  memset(&t->body, 0, sizeof t->body);
  memcpy(o->errbuf, t->errbuf, sizeof o->errbuf);
  o->errbuf[sizeof o->errbuf - 1] = '\0';
}

/* Hands a buffer back to a transfer that has none (it may have been
 * released or reused while Lua code ran), else frees it. */
static void give_back(struct buffer *b, struct buffer *to, int usable) {
  if (usable && to->data == NULL && b->cap <= KEEP_BUFFER_BYTES) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
    *to = *b;
  } else {
    buffer_free(b);
  }
  memset(b, 0, sizeof *b);
}

/* ---- conversion, inside the protected call ---- */

/* The response headers as a table of lower-case names. */
static void push_headers(lua_State *L, const struct buffer *head) {
  struct http_head_cursor c;
  http_head_lenient(&c, head->data, head->len);
  http_head_push_headers(L, &c);
}

/* The value of the x-request-id header (as push_headers would have it),
 * or nil. */
static void push_request_id(lua_State *L, const struct buffer *head) {
  struct http_head_cursor c;
  http_head_lenient(&c, head->data, head->len);
  http_head_push_value(L, &c, "x-request-id");
}

/* Copies a libcurl message with the user part of every "user@host" made
 * "***": libcurl quotes proxy URLs, credentials included, in some of its
 * messages. */
static void redact_userinfo(const char *in, char *out, size_t size) {
  size_t o = 0, from = 0, i, n = strlen(in);
  for (i = 0; i <= n && o + 1 < size; i++) {
    size_t start, k;
    if (i < n && in[i] != '@') continue;
    start = i;
    if (i < n) /* the user part: back to a delimiter or "://" */
      while (start > from && !strchr(" \t'\"(<[", in[start - 1]) &&
             !(start - from >= 3 && memcmp(in + start - 3, "://", 3) == 0))
        start--;
    for (k = from; k < start && o + 1 < size; k++) out[o++] = in[k];
    if (i < n) {
      for (k = 0; k < 3 && o + 1 < size; k++) out[o++] = '*';
      from = i; /* the '@' itself is copied with what follows */
    }
  }
  out[o] = '\0';
}

/* libcurl results that come from the client's own settings (a malformed
 * proxy URL in the environment, say): retrying cannot help. */
static int is_config_error(const struct outcome *o) {
  switch (o->result) {
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_NOT_BUILT_IN:
  case CURLE_BAD_FUNCTION_ARGUMENT:
  case CURLE_UNKNOWN_OPTION:
    return 1;
  case CURLE_COULDNT_RESOLVE_PROXY:
    return strncmp(o->errbuf, "Unsupported proxy", 17) == 0;
  default:
    return 0;
  }
}

static void push_failure(lua_State *L, struct outcome *o) {
  if (o->out_of_memory) luaL_error(L, "out of memory while reading the response");
  lua_pushnil(L);
  if (o->too_large) {
    lua_pushliteral(L, "too_large");
    /* %I of lua_pushfstring does not exist before 5.3: the digits first */
    char limit[24];
    snprintf(limit, sizeof limit, "%llu", (unsigned long long)o->max_response_bytes);
    if (o->streaming && o->headers_done && o->status >= 200 && o->status < 300)
      sse_push_too_large(L, o->max_response_bytes);
    else if (o->headers_done)
      lua_pushfstring(L, "response exceeds the limit of %s bytes", limit);
    else
      lua_pushliteral(L, "response headers exceed the limit");
  } else if (o->result != CURLE_OK && (o->socket_errno == EMFILE || o->socket_errno == ENFILE)) {
    lua_pushliteral(L, "fd_limit");
    lua_pushfstring(L, "cannot open a socket: %s (close the streams and clients you no longer use)",
                    o->socket_errno == EMFILE ? "this process has as many files open as it may"
                                              : "the system has as many files open as it may");
  } else if (o->result == CURLE_OUT_OF_MEMORY && !o->headers_done) {
    /* libcurl says "Out of memory" for a header line over its own limit
     * (100 KiB): it is the server's fault, not a reason to retry. */
    lua_pushliteral(L, "too_large");
    lua_pushliteral(L, "a response header line exceeds libcurl's limit");
  } else if (o->result == CURLE_OK) {
    lua_pushliteral(L, "connection");
    lua_pushliteral(L, "the response ended before its headers were complete");
  } else {
    lua_pushstring(L, o->result == CURLE_OPERATION_TIMEDOUT ? "timeout" : is_config_error(o) ? "config" : "connection");
    char message[CURL_ERROR_SIZE];
    redact_userinfo(o->errbuf[0] ? o->errbuf : curl_easy_strerror(o->result), message, sizeof message);
    lua_pushstring(L, message);
  }
}

/* With decode, a non-empty body is parsed as JSON; when that fails the raw
 * text comes with the reason. With id_only, a 2xx body that decodes to a
 * JSON object (a table without metatable) comes as status, false, object,
 * request id. */
static void push_response(lua_State *L, struct outcome *o, int decode, int id_only) {
  char err[256];
  int object = 0;
  lua_pushinteger(L, o->status);
  if (decode && o->body.len > 0) {
    if (openai_json_decode(L, o->body.data, o->body.len, OPENAI_JSON_MAX_DEPTH, o->max_response_values, err, sizeof err)) {
      if (lua_type(L, -1) == LUA_TTABLE) {
        object = !lua_getmetatable(L, -1); /* arrays have one */
        if (!object) lua_pop(L, 1);
      }
    } else {
      lua_pushlstring(L, o->body.data, o->body.len);
      lua_pushstring(L, err);
    }
  } else {
    lua_pushlstring(L, o->body.data ? o->body.data : "", o->body.len);
  }
  if (id_only && object && o->status >= 200 && o->status < 300) {
    lua_pushboolean(L, 0);
    lua_insert(L, 2); /* in place of the headers */
    push_request_id(L, &o->head);
  } else {
    push_headers(L, &o->head);
    lua_insert(L, 2); /* after the status */
  }
}

static int convert(lua_State *L) {
  struct outcome *o = lua_touserdata(L, 1);
  enum outcome_form form = (enum outcome_form)lua_tointeger(L, 2);
  int decode = lua_toboolean(L, 3);
  lua_settop(L, 0);
  switch (form) {
  case OUTCOME_FAILURE: push_failure(L, o); break;
  case OUTCOME_HEAD:
    lua_pushinteger(L, o->status);
    push_headers(L, &o->head);
    break;
  default: push_response(L, o, decode, form == OUTCOME_RESPONSE_ID); break;
  }
  return lua_gettop(L);
}

int outcome_push(lua_State *L, struct outcome *o, enum outcome_form form, int decode, struct transfer *reuse) {
  int base = lua_gettop(L), status, usable;
  if (!lua_checkstack(L, 8)) { /* never raises: o's buffers would leak */
    buffer_free(&o->body);
    buffer_free(&o->head);
    return luaL_error(L, "stack overflow");
  }
  /* A light C function and scalars: nothing allocates before the call. */
  lua_pushcfunction(L, convert);
  lua_pushlightuserdata(L, o);
  lua_pushinteger(L, (lua_Integer)form);
  lua_pushboolean(L, decode);
  status = lua_pcall(L, 3, LUA_MULTRET, 0);
  usable = reuse != NULL && reuse->easy != NULL && reuse->conn != NULL && reuse->conn->multi != NULL;
  give_back(&o->body, usable ? &reuse->body : NULL, usable);
  give_back(&o->head, usable ? &reuse->head : NULL, usable);
  if (status != LUA_OK) return lua_error(L);
  return lua_gettop(L) - base;
}

int outcome_push_closed(lua_State *L, const char *what) {
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  lua_pushfstring(L, "the %s was closed", what);
  return 3;
}
