/* A growable byte buffer with a hard cap, for response bodies, header
 * blocks and SSE events. Plain malloc memory: it is filled from libcurl
 * callbacks, where no Lua allocation (and so no Lua error) may happen. */
#ifndef OPENAI_BUFFER_H
#define OPENAI_BUFFER_H

#include <stddef.h>

struct buffer {
  char *data;
  size_t len;
  size_t cap;
};

/* Appends n bytes; keeps a NUL after the data. Returns 0 when memory runs
 * out, leaving the buffer as it was. */
int buffer_append(struct buffer *b, const char *src, size_t n);

/* Forgets the content; keeps the memory unless it grew beyond keep bytes,
 * so one huge response does not pin its memory for the client's life. */
void buffer_reset(struct buffer *b, size_t keep);

void buffer_free(struct buffer *b);

#endif
