/* libFuzzer target: the SSE decoder (src/codec/sse.c) fed in pieces.
 *
 * Input layout: byte 0 holds flags (bits 0-2: number of cuts, bit 3: a
 * small max_event_bytes taken from byte 1, bit 4: feed one byte at a time),
 * then two bytes per cut (a position), then the SSE text itself.
 *
 * The text is decoded twice, once in one piece and once cut at those
 * positions (or byte by byte); the two event lists, and how decoding ended
 * (ok, too large), must be identical. Every event must respect the limit
 * (name + data <= max_event_bytes) and hold no CR, and no LF in its name. */
#include "fuzz_common.h" /* first: feature macros */

#include <string.h>

#include "codec/sse.h"

struct record {
  char *data;
  size_t len, cap;
  size_t events;
  size_t limit;
};

static void record_add(struct record *r, const void *p, size_t n) {
  if (r->len + n > r->cap) {
    size_t cap = r->cap ? r->cap : 256;
    while (cap < r->len + n) cap *= 2;
    r->data = realloc(r->data, cap);
    if (r->data == NULL) fuzz_fail("out of memory", NULL);
    r->cap = cap;
  }
  memcpy(r->data + r->len, p, n);
  r->len += n;
}

static int on_event(void *ud, const char *event, size_t event_len, const char *data, size_t data_len) {
  struct record *r = ud;
  char has = event != NULL;
  if (event == NULL && event_len != 0) fuzz_fail("no event name but a name length", NULL);
  if (event_len + data_len > r->limit) fuzz_fail("event larger than max_event_bytes", NULL);
  if (event_len > 0 && (memchr(event, '\r', event_len) || memchr(event, '\n', event_len)))
    fuzz_fail("CR or LF in an event name", NULL);
  if (data_len > 0 && memchr(data, '\r', data_len)) fuzz_fail("CR in event data", NULL);
  r->events++;
  record_add(r, &has, 1);
  record_add(r, &event_len, sizeof event_len);
  if (event_len > 0) record_add(r, event, event_len);
  record_add(r, &data_len, sizeof data_len);
  if (data_len > 0) record_add(r, data, data_len);
  return 1;
}

/* Decodes text cut at the given sorted positions; returns the final status. */
static int decode(const char *text, size_t len, const size_t *cuts, size_t ncuts, int bytewise, size_t limit,
                  struct record *r) {
  struct sse_parser p;
  size_t at = 0, i;
  int status = SSE_OK;
  r->limit = limit;
  sse_init(&p, limit);
  if (bytewise) {
    for (at = 0; at < len && status == SSE_OK; at++) status = sse_feed(&p, text + at, 1, on_event, r);
  } else {
    for (i = 0; i <= ncuts && status == SSE_OK; i++) {
      size_t end = i < ncuts ? cuts[i] : len;
      status = sse_feed(&p, text + at, end - at, on_event, r);
      at = end;
    }
  }
  if (status == SSE_OK) status = sse_finish(&p, on_event, r);
  sse_free(&p);
  /* the parser can be used again after sse_free + sse_init */
  return status;
}

static int compare_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fuzz_reader in = {data, size};
  struct record whole = {NULL, 0, 0, 0, 0}, pieces = {NULL, 0, 0, 0, 0};
  unsigned flags = fuzz_byte(&in);
  size_t ncuts = flags & 7u, cuts[8], i, len, limit = (size_t)1 << 20;
  unsigned raw[8];
  int bytewise = (flags & 16u) != 0, s1, s2;
  const char *text;

  if (flags & 8u) limit = fuzz_byte(&in) % 64;
  for (i = 0; i < ncuts; i++) {
    raw[i] = fuzz_byte(&in);
    raw[i] = raw[i] << 8 | fuzz_byte(&in);
  }
  text = fuzz_bytes(&in, in.left, &len);
  for (i = 0; i < ncuts; i++) cuts[i] = len ? raw[i] % (len + 1) : 0;
  qsort(cuts, ncuts, sizeof cuts[0], compare_size);

  s1 = decode(text, len, NULL, 0, 0, limit, &whole);
  s2 = decode(text, len, cuts, ncuts, bytewise, limit, &pieces);
  if (s1 != SSE_OK && s1 != SSE_TOO_LARGE) fuzz_fail("unexpected status in one piece", NULL);
  if (s1 != s2) {
    char why[96];
    snprintf(why, sizeof why, "status %d in one piece, %d in pieces (limit %lu)", s1, s2, (unsigned long)limit);
    fuzz_fail("cutting the input changes how decoding ends", why);
  }
  if (whole.events != pieces.events || whole.len != pieces.len ||
      (whole.len > 0 && memcmp(whole.data, pieces.data, whole.len) != 0))
    fuzz_fail("cutting the input changes the events", NULL);
  free(whole.data);
  free(pieces.data);
  return 0;
}
