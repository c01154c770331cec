/* The server-sent events a stream has decoded but Lua has not read yet.
 *
 * Each event is one malloc'd block, so reading one frees exactly its bytes
 * (the queue holds only what is unread, whatever the reading pattern), and
 * a reader can unlink an event and own it while Lua code runs: nothing the
 * transfer does afterwards (appending, closing) can touch it. Plain C, no
 * Lua: events are queued from libcurl's write callback. */
#ifndef OPENAI_EVENT_QUEUE_H
#define OPENAI_EVENT_QUEUE_H

#include <stddef.h>

#define EVENT_NO_NAME ((size_t)-1)

struct event {
  struct event *next;
  size_t name_len; /* EVENT_NO_NAME when the event had no "event" field */
  size_t data_len;
  char bytes[];    /* the name (if any), then the data */
};

struct event_queue {
  struct event *head;
  struct event *tail;
  size_t bytes; /* name and data bytes of the queued events */
};

/* Queues a copy. event is NULL for an event without a name. Returns 0 when
 * memory runs out (the queue is unchanged). */
int event_queue_push(struct event_queue *q, const char *name, size_t name_len,
                     const char *data, size_t data_len);

/* event_queue_push as an sse_emit_fn (sse.h) for the queue at ud: 0, which
 * stops the SSE decoder, when memory runs out. */
int event_queue_emit(void *ud, const char *name, size_t name_len, const char *data, size_t data_len);

/* Unlinks the oldest event; the caller owns it and frees it with free().
 * NULL when the queue is empty. */
struct event *event_queue_pop(struct event_queue *q);

void event_queue_clear(struct event_queue *q);

#endif
