/* A server-sent events decoder (the WHATWG rules the official SDKs follow):
 * lines end in LF, CR or CRLF (also split across reads), ':' starts a
 * comment, "event" names the event, "data" lines are joined with LF, a
 * blank line ends the event, and a pending event is flushed at EOF.
 * Plain C with no Lua: it runs inside libcurl's write callback. */
#ifndef OPENAI_SSE_H
#define OPENAI_SSE_H

#include <stddef.h>

#include "buffer.h"

/* The default cap on a response's bytes in the transports, which is the cap
 * on one of its events too, and so the default of core.sse_decoder. */
#define OPENAI_DEFAULT_MAX_RESPONSE_BYTES ((size_t)64 * 1024 * 1024)

enum sse_status { SSE_OK = 0, SSE_TOO_LARGE, SSE_NO_MEMORY, SSE_STOPPED };

/* Receives one complete event; event is NULL when it had no "event" field.
 * Returns 0 to stop decoding (sse_feed then returns SSE_STOPPED). */
typedef int (*sse_emit_fn)(void *ud, const char *event, size_t event_len, const char *data, size_t data_len);

struct sse_parser {
  struct buffer line;  /* the line read so far */
  struct buffer event; /* the pending event's name */
  struct buffer data;  /* the pending event's data lines, LF-joined */
  int has_event;
  size_t data_lines;
  int after_cr;            /* the last byte was CR: an LF right after it is part of it */
  size_t max_event_bytes;  /* cap on one line and on one event's name + data */
};

void sse_init(struct sse_parser *p, size_t max_event_bytes);
int sse_feed(struct sse_parser *p, const char *bytes, size_t n, sse_emit_fn emit, void *ud);
/* End of input: the unterminated line and the pending event are delivered. */
int sse_finish(struct sse_parser *p, sse_emit_fn emit, void *ud);
void sse_free(struct sse_parser *p);

#endif
