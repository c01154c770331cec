/*
 * The curl-multi anchor of `make bench-concurrency`: many transfers in
 * flight from one thread with libcurl's multi interface, driven the way the
 * client's C core drives it (the socket interface and an epoll loop), and
 * nothing else: no Lua, and no JSON decode unless --yajl.
 *
 *   build/bench/multi retrieve URL SECONDS IN_FLIGHT [--yajl] [--headers FILE]
 *     IN_FLIGHT easy handles GET URL at once; one that completes is removed
 *     and added again at once (its connection stays in the multi handle's
 *     cache and is reused), until SECONDS have passed; then the last ones
 *     finish. The body is kept in a buffer and not decoded; with --yajl it
 *     is also parsed by yajl (callbacks that count values). A first round
 *     of IN_FLIGHT calls, not counted, opens the connections and checks the
 *     answer. With --headers every request also carries the header lines
 *     of FILE (the ones the client sends: bench/client_headers.lua). Prints
 *       RESULT <calls> <wall s> <process CPU s> <peak RSS kB>
 *
 *   build/bench/multi streams URL STREAMS [--header LINE]...
 *     STREAMS POSTs of a streaming chat completion request at once, each
 *     read to its end; the server-sent events are counted (blank lines),
 *     not parsed, and the last one must be "data: [DONE]". Prints
 *       RESULT <streams> <chunks> <wall s> <process CPU s> <RSS before kB> <peak RSS kB>
 *     chunks: the events before each stream's [DONE]; RSS before: before the
 *     first handle is made.
 */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <sys/epoll.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define STREAM_BODY "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}"

struct loop {
  CURLM *multi;
  int epfd;
  double deadline; /* libcurl's timer, monotonic seconds; < 0: none */
};

/* One transfer: its handle and what it received. */
struct transfer {
  CURL *easy;
  struct body body;
  long events;      /* streams: events seen */
  int newline;      /* streams: the last byte seen was '\n' */
  char tail[16];    /* streams: the last bytes seen, for the [DONE] check */
  size_t tail_len;
};

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
  struct loop *l = userp;
  struct epoll_event ev;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, s, NULL);
    curl_multi_assign(l->multi, s, NULL);
    return 0;
  }
  memset(&ev, 0, sizeof ev);
  ev.data.fd = s;
  ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
  if (socketp != NULL) {
    epoll_ctl(l->epfd, EPOLL_CTL_MOD, s, &ev);
  } else {
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, s, &ev);
    curl_multi_assign(l->multi, s, l); /* any non-NULL: known to epoll */
  }
  return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp) {
  struct loop *l = userp;
  (void)multi;
  l->deadline = timeout_ms < 0 ? -1 : seconds(CLOCK_MONOTONIC) + (double)timeout_ms / 1000;
  return 0;
}

/* Waits for I/O (or libcurl's timer) and lets libcurl act on it. */
static void loop_step(struct loop *l) {
  struct epoll_event events[64];
  int still, i, n, wait_ms = 1000;
  if (l->deadline >= 0) {
    double left = l->deadline - seconds(CLOCK_MONOTONIC);
    wait_ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
  }
  n = epoll_wait(l->epfd, events, 64, wait_ms);
  for (i = 0; i < n; i++) {
    int flags = ((events[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                ((events[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                ((events[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
    curl_multi_socket_action(l->multi, events[i].data.fd, flags, &still);
  }
  if (l->deadline >= 0 && seconds(CLOCK_MONOTONIC) >= l->deadline) {
    l->deadline = -1;
    curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &still);
  }
}

/* The next transfer libcurl has finished, or NULL; exits on a failure. */
static struct transfer *next_done(struct loop *l) {
  int left;
  CURLMsg *msg;
  while ((msg = curl_multi_info_read(l->multi, &left)) != NULL) {
    struct transfer *t;
    long status = 0;
    if (msg->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
    if (msg->data.result != CURLE_OK || status != 200) {
      fprintf(stderr, "multi: %s, HTTP %ld\n", curl_easy_strerror(msg->data.result), status);
      exit(1);
    }
    curl_multi_remove_handle(l->multi, msg->easy_handle);
    return t;
  }
  return NULL;
}

static void loop_init(struct loop *l) {
  l->multi = curl_multi_init();
  l->epfd = epoll_create1(EPOLL_CLOEXEC);
  l->deadline = -1;
  if (l->multi == NULL || l->epfd < 0) {
    fprintf(stderr, "multi: no multi handle or epoll set\n");
    exit(1);
  }
  curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, (void *)l);
  curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, (void *)l);
}

static void transfer_init(struct transfer *t, const char *url, curl_write_callback write, struct curl_slist *headers) {
  memset(t, 0, sizeof *t);
  t->easy = curl_easy_init();
  if (t->easy == NULL) {
    fprintf(stderr, "multi: no easy handle\n");
    exit(1);
  }
  curl_easy_setopt(t->easy, CURLOPT_URL, url);
  curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, write);
  curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, (void *)t);
  curl_easy_setopt(t->easy, CURLOPT_PRIVATE, (void *)t);
  curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
  if (headers != NULL) curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, headers);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
  struct transfer *t = userdata;
  return body_append(ptr, size, nmemb, &t->body);
}

/* Counts events (blank lines) without parsing them; keeps the last bytes. */
static size_t on_events(char *ptr, size_t size, size_t nmemb, void *userdata) {
  struct transfer *t = userdata;
  size_t n = size * nmemb, i, keep;
  for (i = 0; i < n; i++) {
    if (ptr[i] == '\n') {
      if (t->newline) t->events++;
      t->newline = 1;
    } else if (ptr[i] != '\r') {
      t->newline = 0;
    }
  }
  /* tail: the last sizeof tail - 1 bytes received */
  keep = sizeof t->tail - 1;
  if (n >= keep) {
    memcpy(t->tail, ptr + n - keep, keep);
    t->tail_len = keep;
  } else {
    size_t drop = t->tail_len + n > keep ? t->tail_len + n - keep : 0;
    memmove(t->tail, t->tail + drop, t->tail_len - drop);
    memcpy(t->tail + t->tail_len - drop, ptr, n);
    t->tail_len += n - drop;
  }
  t->tail[t->tail_len] = '\0';
  return n;
}

static void add(struct loop *l, struct transfer *t) {
  t->body.len = 0;
  if (curl_multi_add_handle(l->multi, t->easy) != CURLM_OK) {
    fprintf(stderr, "multi: cannot add a handle\n");
    exit(1);
  }
}

static int retrieve(const char *url, double limit, int in_flight, int with_yajl, struct curl_slist *headers) {
  struct loop l;
  struct transfer *ts = calloc((size_t)in_flight, sizeof *ts);
  struct transfer *t;
  double wall0, cpu0, wall;
  long calls = 0, values = 0;
  int i, running;

  loop_init(&l);
  for (i = 0; i < in_flight; i++) transfer_init(&ts[i], url, on_body, headers);
  /* A first round, not counted: connections, and the answer checked. */
  for (i = 0; i < in_flight; i++) add(&l, &ts[i]);
  for (running = in_flight; running > 0;) {
    loop_step(&l);
    while ((t = next_done(&l)) != NULL) {
      running--;
      if (t->body.len == 0 || yajl_count(&t->body) <= 0) {
        fprintf(stderr, "multi: the first answer is not JSON\n");
        return 1;
      }
    }
  }

  wall0 = seconds(CLOCK_MONOTONIC);
  cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
  for (i = 0; i < in_flight; i++) add(&l, &ts[i]);
  running = in_flight;
  wall = 0;
  while (running > 0) {
    loop_step(&l);
    wall = seconds(CLOCK_MONOTONIC) - wall0;
    while ((t = next_done(&l)) != NULL) {
      ++calls;
      if (with_yajl) {
        long n = yajl_count(&t->body);
        if (n <= 0) {
          fprintf(stderr, "multi: body is not JSON\n");
          return 1;
        }
        values += n;
      }
      if (wall < limit) add(&l, t);
      else running--;
    }
  }
  printf("RESULT %ld %.6f %.6f %ld\n", calls, wall, seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0, status_kb("VmHWM"));
  if (with_yajl && values % calls != 0) fprintf(stderr, "multi: %ld values in %ld calls?\n", values, calls);
  for (i = 0; i < in_flight; i++) {
    curl_easy_cleanup(ts[i].easy);
    free(ts[i].body.data);
  }
  free(ts);
  curl_multi_cleanup(l.multi);
  return 0;
}

static int streams(const char *url, int count, struct curl_slist *headers) {
  struct loop l;
  struct transfer *ts, *t;
  double wall0, cpu0;
  long rss_before = status_kb("VmRSS"), chunks = 0;
  int i, running;

  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Accept: text/event-stream");
  headers = curl_slist_append(headers, "Authorization: Bearer sk-bench-0123456789");
  ts = calloc((size_t)count, sizeof *ts);
  if (ts == NULL) return 1;
  loop_init(&l);
  wall0 = seconds(CLOCK_MONOTONIC);
  cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
  for (i = 0; i < count; i++) {
    transfer_init(&ts[i], url, on_events, headers);
    curl_easy_setopt(ts[i].easy, CURLOPT_POSTFIELDS, STREAM_BODY);
    add(&l, &ts[i]);
  }
  for (running = count; running > 0;) {
    loop_step(&l);
    while ((t = next_done(&l)) != NULL) {
      running--;
      if (strstr(t->tail, "data: [DONE]") == NULL) {
        fprintf(stderr, "multi: a stream did not end with [DONE]\n");
        return 1;
      }
      chunks += t->events - 1;
    }
  }
  printf("RESULT %d %ld %.6f %.6f %ld %ld\n", count, chunks, seconds(CLOCK_MONOTONIC) - wall0,
         seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0, rss_before, status_kb("VmHWM"));
  for (i = 0; i < count; i++) curl_easy_cleanup(ts[i].easy);
  free(ts);
  curl_slist_free_all(headers);
  curl_multi_cleanup(l.multi);
  return 0;
}

int main(int argc, char **argv) {
  int rc = 2;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
  if (argc >= 5 && strcmp(argv[1], "retrieve") == 0 && atof(argv[3]) > 0 && atoi(argv[4]) > 0) {
    struct curl_slist *headers = NULL;
    int with_yajl = 0, i;
    for (i = 5; i < argc; i++) {
      if (strcmp(argv[i], "--yajl") == 0) {
        with_yajl = 1;
      } else if (strcmp(argv[i], "--headers") == 0 && i + 1 < argc && headers == NULL) {
        if ((headers = read_header_lines(argv[++i])) == NULL) break;
      } else {
        break;
      }
    }
    if (i == argc) rc = retrieve(argv[2], atof(argv[3]), atoi(argv[4]), with_yajl, headers);
    curl_slist_free_all(headers);
  } else if (argc >= 4 && argc % 2 == 0 && strcmp(argv[1], "streams") == 0 && atoi(argv[3]) > 0) {
    struct curl_slist *headers = NULL;
    int i;
    for (i = 4; i + 1 < argc; i += 2) {
      if (strcmp(argv[i], "--header") != 0) break;
      headers = curl_slist_append(headers, argv[i + 1]);
    }
    if (i >= argc) rc = streams(argv[2], atoi(argv[3]), headers);
  }
  if (rc == 2) {
    fprintf(stderr, "usage: %s retrieve URL SECONDS IN_FLIGHT [--yajl] [--headers FILE]\n"
                    "       %s streams URL STREAMS [--header LINE]...\n", argv[0], argv[0]);
  }
  curl_global_cleanup();
  return rc;
}
