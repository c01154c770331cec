/* What the C anchors of the benchmarks share: see bench/common.h. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <yajl/yajl_parse.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t body_append(char *ptr, size_t size, size_t nmemb, void *userdata) {
  struct body *b = userdata;
  size_t n = size * nmemb;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    char *data;
    while (cap < b->len + n) cap *= 2;
    data = realloc(b->data, cap);
    if (data == NULL) return 0;
    b->data = data;
    b->cap = cap;
  }
  memcpy(b->data + b->len, ptr, n);
  b->len += n;
  return n;
}

double seconds(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* yajl callbacks: count values, keep nothing. */
static int count_null(void *ctx) { ++*(long *)ctx; return 1; }
static int count_bool(void *ctx, int v) { (void)v; ++*(long *)ctx; return 1; }
static int count_integer(void *ctx, long long v) { (void)v; ++*(long *)ctx; return 1; }
static int count_double(void *ctx, double v) { (void)v; ++*(long *)ctx; return 1; }
static int count_string(void *ctx, const unsigned char *s, size_t n) { (void)s; (void)n; ++*(long *)ctx; return 1; }
static int count_start_map(void *ctx) { ++*(long *)ctx; return 1; }
static int count_key(void *ctx, const unsigned char *s, size_t n) { (void)ctx; (void)s; (void)n; return 1; }
static int count_end(void *ctx) { (void)ctx; return 1; }
static int count_start_array(void *ctx) { ++*(long *)ctx; return 1; }

static const yajl_callbacks counting = {
  count_null, count_bool, count_integer, count_double, NULL, count_string,
  count_start_map, count_key, count_end, count_start_array, count_end,
};

long yajl_count(const struct body *b) {
  long values = 0;
  yajl_handle h = yajl_alloc(&counting, NULL, &values);
  yajl_status st;
  if (h == NULL) return -1;
  st = yajl_parse(h, (const unsigned char *)b->data, b->len);
  if (st == yajl_status_ok) st = yajl_complete_parse(h);
  yajl_free(h);
  return st == yajl_status_ok ? values : -1;
}

long status_kb(const char *field) {
  char line[256];
  size_t n = strlen(field);
  long value = -1;
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, field, n) == 0 && line[n] == ':') {
      value = strtol(line + n + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return value;
}

struct curl_slist *read_header_lines(const char *path) {
  struct curl_slist *list = NULL;
  char line[8192];
  FILE *f = fopen(path, "r");
  if (f == NULL) return NULL;
  while (fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] != '\0') list = curl_slist_append(list, line);
  }
  fclose(f);
  return list;
}
