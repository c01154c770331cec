#include "buffer.h"

#include <stdlib.h>
#include <string.h>

int buffer_append(struct buffer *b, const char *src, size_t n) {
  if (n >= (size_t)-1 - b->len) return 0;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    char *data;
    while (cap < b->len + n + 1) {
      if (cap > ((size_t)-1) / 2) { cap = b->len + n + 1; break; }
      cap *= 2;
    }
    data = realloc(b->data, cap);
    if (data == NULL) return 0;
    b->data = data;
    b->cap = cap;
  }
  if (n > 0) memcpy(b->data + b->len, src, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 1;
}

void buffer_reset(struct buffer *b, size_t keep) {
  if (b->cap > keep) {
    buffer_free(b);
    return;
  }
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

void buffer_free(struct buffer *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
