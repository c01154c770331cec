/* What http.c (blocking requests) and stream.c (pulled SSE streams) share:
 * a transfer is one libcurl easy handle with its buffers; a connection is
 * a client's multi handle (connection cache, keep-alive, TLS sessions) with
 * its blocking-request transfer and the list of its open streams. */
#ifndef OPENAI_TRANSFER_H
#define OPENAI_TRANSFER_H

#include <curl/curl.h>

#include "buffer.h"
#include "compat.h"
#include "sse.h"

struct connection;

struct transfer {
  CURL *easy; /* NULL once released */
  struct connection *conn;
  struct curl_slist *headers; /* request headers */
  struct buffer body;         /* response body (SSE bodies go to `sse`) */
  struct buffer head;         /* header lines of the current response */
  struct buffer events;       /* decoded SSE events not yet read */
  size_t events_read;         /* offset of the first unread event */
  struct sse_parser sse;
  size_t max_response_bytes;
  long status;        /* final status, once the headers are complete */
  int headers_done;   /* the final response's header block is complete */
  int streaming;      /* a 2xx body is decoded as SSE */
  int active;         /* added to the connection's multi handle */
  int done;           /* libcurl finished the transfer */
  int sse_finished;   /* sse_finish ran after the end */
  int paused;
  int too_large;
  int out_of_memory;
  CURLcode result;
  double last_activity; /* monotonic seconds of the last byte received */
  double timeout;       /* seconds; 0 for none */
  struct transfer *next_stream;
  char errbuf[CURL_ERROR_SIZE];
};

struct connection {
  CURLM *multi; /* NULL once closed */
  struct transfer request;
  struct transfer *streams;
};

double openai_monotonic(void);

/* Initialises t with a fresh easy handle that copies the settings of the
 * connection's request handle. Returns 0 on failure. */
int transfer_init_from(struct transfer *t, struct connection *conn);
/* Reads method, url, headers table, body and timeout from the Lua stack
 * (raising on bad arguments; all allocations stay owned by t) and sets
 * them on the easy handle. The arguments start at index first. */
void transfer_prepare(lua_State *L, struct transfer *t, int first, int streaming);
int transfer_start(struct transfer *t);
/* At the end of a stream: delivers the event the server did not end. */
void transfer_finish_events(struct transfer *t);
void transfer_stop(struct transfer *t);   /* removes it from the multi handle */
void transfer_release(struct transfer *t); /* frees everything; idempotent */

/* Runs libcurl once without blocking; marks finished transfers done. */
void connection_drive(struct connection *c);
/* Waits up to wait_ms for network activity. */
void connection_wait(struct connection *c, long wait_ms);

/* Result pushers. */
void transfer_push_headers(lua_State *L, const struct transfer *t);
int transfer_push_failure(lua_State *L, struct transfer *t); /* nil, kind, message */
int transfer_push_response(lua_State *L, struct transfer *t, int decode);

struct connection *openai_check_connection(lua_State *L, int idx);

/* Stream userdata (stream.c): conn:stream(...). */
int openai_stream_open(lua_State *L);
void openai_stream_register(lua_State *L);
void openai_stream_abort(struct transfer *t); /* the connection closes under it */

#endif
