#include "event_queue.h"

#include <stdlib.h>
#include <string.h>

int event_queue_push(struct event_queue *q, const char *name, size_t name_len,
                     const char *data, size_t data_len) {
  size_t stored_name = name ? name_len : 0;
  struct event *e;
  if (stored_name > (size_t)-1 - sizeof *e - data_len) return 0;
  e = malloc(sizeof *e + stored_name + data_len);
  if (e == NULL) return 0;
  e->next = NULL;
  e->name_len = name ? name_len : EVENT_NO_NAME;
  e->data_len = data_len;
  if (stored_name > 0) memcpy(e->bytes, name, stored_name);
  if (data_len > 0) memcpy(e->bytes + stored_name, data, data_len);
  if (q->tail) q->tail->next = e;
  else q->head = e;
  q->tail = e;
  q->bytes += stored_name + data_len;
  return 1;
}

int event_queue_emit(void *ud, const char *name, size_t name_len, const char *data, size_t data_len) {
  return event_queue_push(ud, name, name_len, data, data_len);
}

struct event *event_queue_pop(struct event_queue *q) {
  struct event *e = q->head;
  if (e == NULL) return NULL;
  q->head = e->next;
  if (q->head == NULL) q->tail = NULL;
  q->bytes -= (e->name_len == EVENT_NO_NAME ? 0 : e->name_len) + e->data_len;
  e->next = NULL;
  return e;
}

void event_queue_clear(struct event_queue *q) {
  struct event *e;
  while ((e = event_queue_pop(q)) != NULL) free(e);
}
