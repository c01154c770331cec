/*
 * The floor of `make bench`: the least a client on libcurl can do per call.
 * One easy handle, reused (keep-alive), GETs URL again and again for SECONDS;
 * the write callback appends the body to a buffer that is reused. With
 * --yajl the body is also parsed by yajl (callbacks that count values):
 * libcurl + a JSON parse and nothing of Lua, the second anchor. With
 * --headers FILE every request also carries the header lines of FILE (one
 * a line: the ones the client sends, see bench/client_headers.lua), so the
 * cost of sending them shows apart from the client's own.
 *
 *   build/bench/floor URL SECONDS [--yajl] [--headers FILE]
 *   build/bench/floor URL -n CALLS [--yajl] [--headers FILE]
 *                                  (a fixed number of calls, for
 *                                   tools/bench-callgrind.sh)
 *
 * Prints one line for tools/bench.sh:
 *   RESULT <calls> <wall seconds> <process CPU seconds> <body bytes>
 */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  CURL *curl;
  struct body b = { NULL, 0, 0 };
  struct curl_slist *headers = NULL;
  double limit = 0, wall0, cpu0, wall, cpu;
  long calls = 0, count = 0, status = 0, values = 0;
  int with_yajl = 0, arg = 2;
  CURLcode rc;

  if (argc >= 4 && strcmp(argv[2], "-n") == 0) {
    count = atol(argv[3]);
    arg = 4;
  } else if (argc >= 3) {
    limit = atof(argv[2]);
    arg = 3;
  }
  for (; arg < argc; arg++) {
    if (strcmp(argv[arg], "--yajl") == 0) {
      with_yajl = 1;
    } else if (strcmp(argv[arg], "--headers") == 0 && arg + 1 < argc) {
      headers = read_header_lines(argv[++arg]);
      if (headers == NULL) {
        fprintf(stderr, "floor: no headers in %s\n", argv[arg]);
        return 2;
      }
    } else {
      break;
    }
  }
  if (argc < 3 || arg != argc || (count == 0 && limit <= 0)) {
    fprintf(stderr, "usage: %s URL SECONDS|-n CALLS [--yajl] [--headers FILE]\n", argv[0]);
    return 2;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
  curl = curl_easy_init();
  if (curl == NULL) return 1;
  curl_easy_setopt(curl, CURLOPT_URL, argv[1]);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, body_append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (headers != NULL) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

  /* One call to warm up and to check the answer. */
  rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  if (rc != CURLE_OK || status != 200 || b.len == 0 || yajl_count(&b) <= 0) {
    fprintf(stderr, "floor: bad first answer (%s, HTTP %ld, %zu bytes)\n", curl_easy_strerror(rc), status, b.len);
    return 1;
  }

  wall0 = seconds(CLOCK_MONOTONIC);
  cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
  do {
    b.len = 0;
    rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
      fprintf(stderr, "floor: %s\n", curl_easy_strerror(rc));
      return 1;
    }
    if (with_yajl) {
      long n = yajl_count(&b);
      if (n <= 0) {
        fprintf(stderr, "floor: body is not JSON\n");
        return 1;
      }
      values += n;
    }
    ++calls;
    wall = seconds(CLOCK_MONOTONIC) - wall0;
  } while (count > 0 ? calls < count : wall < limit);
  cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
  printf("RESULT %ld %.6f %.6f %zu\n", calls, wall, cpu, b.len);
  if (with_yajl && values % calls != 0) fprintf(stderr, "floor: %ld values in %ld calls?\n", values, calls);
  free(b.data);
  curl_easy_cleanup(curl);
  curl_slist_free_all(headers);
  curl_global_cleanup();
  return 0;
}
