/*
 * What the C anchors of the benchmarks share (bench/common.c): a growable
 * body buffer for libcurl's write callback, clocks, a yajl parse that
 * counts values, request header lines from a file, and the process's
 * peak RSS.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stddef.h>
#include <time.h>

#include <curl/curl.h>

struct body {
  char *data;
  size_t len, cap;
};

/* libcurl's CURLOPT_WRITEFUNCTION: appends to the struct body given as
 * CURLOPT_WRITEDATA. */
size_t body_append(char *ptr, size_t size, size_t nmemb, void *userdata);

/* The clock's time in seconds (CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID). */
double seconds(clockid_t clock);

/* Parses the body with yajl; returns the number of values, or -1 if it is
 * not JSON. Numbers are converted (yajl's strtoll/strtod), as any decoder
 * must. */
long yajl_count(const struct body *b);

/* The header lines of a file, one a line, as a libcurl list (NULL when
 * the file cannot be read or has none). */
struct curl_slist *read_header_lines(const char *path);

/* A field of /proc/self/status in kB ("VmHWM", "VmRSS"), or -1. */
long status_kb(const char *field);

#endif
