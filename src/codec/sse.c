#include "sse.h"

#include <string.h>

void sse_init(struct sse_parser *p, size_t max_event_bytes) {
  memset(p, 0, sizeof *p);
  p->max_event_bytes = max_event_bytes;
}

void sse_free(struct sse_parser *p) {
  buffer_free(&p->line);
  buffer_free(&p->event);
  buffer_free(&p->data);
  p->has_event = 0;
  p->data_lines = 0;
  p->after_cr = 0;
}

static int dispatch(struct sse_parser *p, sse_emit_fn emit, void *ud) {
  int keep_going = 1;
  if (p->has_event || p->data_lines > 0) {
    keep_going = emit(ud, p->has_event ? (p->event.data ? p->event.data : "") : NULL, p->event.len,
                      p->data.data ? p->data.data : "", p->data.len);
  }
  buffer_reset(&p->event, 4096);
  buffer_reset(&p->data, 64 * 1024);
  p->has_event = 0;
  p->data_lines = 0;
  return keep_going ? SSE_OK : SSE_STOPPED;
}

/* One complete line (without its terminator). */
static int process_line(struct sse_parser *p, const char *line, size_t len, sse_emit_fn emit, void *ud) {
  const char *colon, *value;
  size_t name_len, value_len;
  if (len == 0) return dispatch(p, emit, ud);
  if (line[0] == ':') return SSE_OK; /* comment */
  colon = memchr(line, ':', len);
  name_len = colon ? (size_t)(colon - line) : len;
  value = colon ? colon + 1 : line + len;
  value_len = (size_t)(line + len - value);
  if (value_len > 0 && value[0] == ' ') {
    value++;
    value_len--;
  }
  if (name_len == 5 && memcmp(line, "event", 5) == 0) {
    if (value_len > p->max_event_bytes - p->data.len) return SSE_TOO_LARGE;
    buffer_reset(&p->event, 4096);
    if (!buffer_append(&p->event, value, value_len)) return SSE_NO_MEMORY;
    p->has_event = 1;
  } else if (name_len == 4 && memcmp(line, "data", 4) == 0) {
    size_t extra = value_len + (p->data_lines > 0);
    if (extra > p->max_event_bytes - p->data.len - p->event.len) return SSE_TOO_LARGE;
    if (p->data_lines > 0 && !buffer_append(&p->data, "\n", 1)) return SSE_NO_MEMORY;
    if (!buffer_append(&p->data, value, value_len)) return SSE_NO_MEMORY;
    p->data_lines++;
  }
  /* id, retry and unknown fields do not matter to the API's streams. */
  return SSE_OK;
}

/* A line that ends inside this read: it is processed straight from the
 * input when nothing of it was buffered before. */
static int end_line(struct sse_parser *p, const char *start, size_t len, sse_emit_fn emit, void *ud) {
  int status;
  if (p->line.len == 0) {
    /* the same cap as for a line that arrives in pieces */
    if (len > p->max_event_bytes) return SSE_TOO_LARGE;
    return process_line(p, start, len, emit, ud);
  }
  if (len > p->max_event_bytes - p->line.len) return SSE_TOO_LARGE;
  if (!buffer_append(&p->line, start, len)) return SSE_NO_MEMORY;
  status = process_line(p, p->line.data, p->line.len, emit, ud);
  buffer_reset(&p->line, 64 * 1024);
  return status;
}

int sse_feed(struct sse_parser *p, const char *bytes, size_t n, sse_emit_fn emit, void *ud) {
  const char *end = bytes + n, *start = bytes, *cur = bytes;
  while (cur < end) {
    char ch = *cur;
    if (ch == '\n' && p->after_cr && cur == start && p->line.len == 0) {
      /* the LF of a CRLF whose CR ended the previous line */
      p->after_cr = 0;
      start = ++cur;
      continue;
    }
    p->after_cr = 0;
    if (ch == '\r' || ch == '\n') {
      int status = end_line(p, start, (size_t)(cur - start), emit, ud);
      if (status != SSE_OK) return status;
      p->after_cr = ch == '\r';
      start = ++cur;
      continue;
    }
    cur++;
  }
  if (start < end) {
    size_t rest = (size_t)(end - start);
    if (rest > p->max_event_bytes - p->line.len) return SSE_TOO_LARGE;
    if (!buffer_append(&p->line, start, rest)) return SSE_NO_MEMORY;
  }
  return SSE_OK;
}

int sse_finish(struct sse_parser *p, sse_emit_fn emit, void *ud) {
  if (p->line.len > 0) {
    int status = process_line(p, p->line.data, p->line.len, emit, ud);
    buffer_reset(&p->line, 0);
    if (status != SSE_OK) return status;
  }
  p->after_cr = 0;
  return dispatch(p, emit, ud);
}
