/* Driving multi handles through libcurl's socket interface, and
 * openai.Loop: one epoll set per Lua state over the sockets of every
 * connection that started a transfer without waiting, so that one call,
 * loop:poll(), moves all of them on, and an outside event loop can wait on
 * one descriptor. Why every multi handle uses the socket interface, even
 * one that never joins the Loop, is in transfer.h (Driving). */
#define _POSIX_C_SOURCE 200809L

#include "loop.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "interrupt.h"
#include "transfer.h"

/* One socket libcurl asked us to watch: its record, found again through
 * curl_multi_assign. */
struct watched_socket {
  curl_socket_t fd;
  struct connection *conn; /* whose multi handle asked */
  int what;   /* CURL_POLL_IN, CURL_POLL_OUT or CURL_POLL_INOUT */
  int in_set; /* in the Loop's epoll set */
  struct watched_socket *next;
};

struct loop {
  int epfd;  /* -1 once closed */
  pid_t pid; /* the process whose epoll instance epfd names (rule 7) */
  struct connection *members; /* the connections whose sockets are in the set */
  /* The transfers that moved on (a head, events, the end) since woken()
   * last took the list, each once (its `woken` flag), so that a scheduler
   * asks only their waiters. A transfer leaves the list when released. */
  struct transfer **woken;
  size_t woken_len, woken_cap;
  int rescan; /* the list may miss one (memory ran out, a transfer was
               * closed before its end, a connection left): ask every
               * waiter once */
  /* The connection of each descriptor in the set, by descriptor, so that
   * an event finds its multi handle at once (NULL: look it up). */
  struct connection **by_fd;
  size_t by_fd_cap;
};

/* Most events one epoll_wait takes; the rest wait for the next one. */
#define POLL_EVENTS 64

/* ---- the epoll set ---- */

static uint32_t epoll_events(int what) {
  return (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
}

/* Records (or, with NULL, forgets) fd's connection; a record that cannot
 * be made leaves dispatch to search. */
static void record_fd(struct loop *l, curl_socket_t fd, struct connection *c) {
  size_t at = (size_t)fd;
  if (fd < 0) return;
  if (at >= l->by_fd_cap) {
    size_t cap = l->by_fd_cap < 64 ? 64 : l->by_fd_cap;
    struct connection **grown;
    if (c == NULL) return;
    while (cap <= at) cap *= 2;
    grown = realloc(l->by_fd, cap * sizeof *grown);
    if (grown == NULL) return;
    memset(grown + l->by_fd_cap, 0, (cap - l->by_fd_cap) * sizeof *grown);
    l->by_fd = grown;
    l->by_fd_cap = cap;
  }
  l->by_fd[at] = c;
}

static void set_remove(struct loop *l, struct watched_socket *w) {
  record_fd(l, w->fd, NULL);
  if (w->in_set) {
    struct epoll_event ev; /* ignored, but kernels before 2.6.9 wanted one */
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, &ev);
    w->in_set = 0;
  }
}

static void set_add(struct loop *l, struct watched_socket *w) {
  struct epoll_event ev;
  /* Nothing wanted now (a paused transfer): out of the set, or a hang-up
   * there would be reported again and again with nobody to act on it. */
  if (epoll_events(w->what) == 0) {
    set_remove(l, w);
    return;
  }
  memset(&ev, 0, sizeof ev);
  ev.events = epoll_events(w->what);
  ev.data.fd = w->fd; /* not the record: an earlier event's action may free it */
  if (epoll_ctl(l->epfd, w->in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, w->fd, &ev) == 0 ||
      /* the set may have lost it (closed and reopened under the same
       * number) or hold it already: the other operation then */
      epoll_ctl(l->epfd, w->in_set ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, w->fd, &ev) == 0) {
    w->in_set = 1;
    record_fd(l, w->fd, w->conn);
  }
}

/* ---- the woken list ---- */

void loop_wake(struct transfer *t) {
  struct loop *l = t->conn != NULL ? t->conn->loop : NULL;
  if (l == NULL || t->woken) return;
  if (l->woken_len == l->woken_cap) {
    size_t cap = l->woken_cap < 32 ? 32 : l->woken_cap * 2;
    struct transfer **grown = realloc(l->woken, cap * sizeof *grown);
    if (grown == NULL) {
      l->rescan = 1;
      return;
    }
    l->woken = grown;
    l->woken_cap = cap;
  }
  l->woken[l->woken_len++] = t;
  t->woken = 1;
}

/* Takes the entries for which drop(entry, c) holds off l's list. */
static void unlist(struct loop *l, int (*drop)(const struct transfer *, const void *), const void *what) {
  size_t i, kept = 0;
  for (i = 0; i < l->woken_len; i++) {
    struct transfer *t = l->woken[i];
    if (drop(t, what))
      t->woken = 0;
    else
      l->woken[kept++] = t;
  }
  l->woken_len = kept;
}

static int is_transfer(const struct transfer *t, const void *what) {
  return t == what;
}

static int of_connection(const struct transfer *t, const void *what) {
  return t->conn == what;
}

void loop_forget(struct transfer *t) {
  struct loop *l = t->conn != NULL ? t->conn->loop : NULL;
  if (l == NULL) return;
  if (!t->done) l->rescan = 1; /* whoever waits on it must see it closed */
  if (t->woken) unlist(l, is_transfer, t);
}

/* Takes c off l's list; its sockets leave the set only when use_set (not
 * in a child of fork, where the set is the parent's: rule 7). */
static void detach(struct loop *l, struct connection *c, int use_set) {
  struct connection **link;
  struct watched_socket *w;
  unlist(l, of_connection, c);
  l->rescan = 1; /* its transfers' waiters see them closed or forsaken */
  for (w = c->sockets; w != NULL; w = w->next) {
    if (use_set) set_remove(l, w);
    record_fd(l, w->fd, NULL);
    w->in_set = 0;
  }
  for (link = &l->members; *link != NULL; link = &(*link)->loop_next) {
    if (*link == c) {
      *link = c->loop_next;
      break;
    }
  }
  c->loop_next = NULL;
  c->loop = NULL;
}

/* ---- libcurl's socket and timer callbacks: C memory only (rule 3) ---- */

static void forget_socket(struct connection *c, struct watched_socket *w) {
  struct watched_socket **link;
  if (c->loop != NULL) set_remove(c->loop, w);
  for (link = &c->sockets; *link != NULL; link = &(*link)->next) {
    if (*link == w) {
      *link = w->next;
      c->socket_count--;
      break;
    }
  }
  free(w);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  struct connection *c = userp;
  struct watched_socket *w = socketp;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (w != NULL) forget_socket(c, w);
    return 0;
  }
  if (w == NULL) {
    w = calloc(1, sizeof *w);
    if (w == NULL) return -1; /* libcurl fails the transfers on this socket */
    w->fd = fd;
    w->conn = c;
    if (curl_multi_assign(c->multi, fd, w) != CURLM_OK) {
      free(w);
      return -1;
    }
    w->next = c->sockets;
    c->sockets = w;
    c->socket_count++;
  }
  w->what = what;
  if (c->loop != NULL) set_add(c->loop, w);
  return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp) {
  struct connection *c = userp;
  (void)multi;
  c->timer_at = timeout_ms < 0 ? -1 : openai_monotonic() + (double)timeout_ms / 1000.0;
  return 0;
}

void connection_watch(struct connection *c) {
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, (void *)c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, (void *)c);
  c->timer_at = -1;
}

void connection_leave_loop(struct connection *c) {
  struct loop *l = c->loop;
  if (l != NULL) detach(l, c, l->epfd >= 0 && l->pid == getpid());
}

void connection_forget_sockets(struct connection *c) {
  struct watched_socket *w;
  if (c->loop != NULL) detach(c->loop, c, 0);
  while ((w = c->sockets) != NULL) {
    c->sockets = w->next;
    free(w);
  }
  c->socket_count = 0;
  free(c->pollfds);
  c->pollfds = NULL;
  c->pollfds_cap = 0;
  c->timer_at = -1;
}

/* ---- driving one multi handle ---- */

/* Marks the transfers libcurl finished done. */
static void read_messages(struct connection *c) {
  int queued = 0;
  CURLMsg *msg;
  while ((msg = curl_multi_info_read(c->multi, &queued)) != NULL) {
    if (msg->msg == CURLMSG_DONE) {
      char *owner = NULL;
      CURL *easy = msg->easy_handle;
      CURLcode result = msg->data.result; /* msg is invalid once removed */
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, &owner);
      if (owner != NULL) {
        struct transfer *t = (struct transfer *)(void *)owner;
        t->result = result;
        t->done = 1;
        transfer_stop(t);
        loop_wake(t);
      }
    }
  }
}

static void act(struct connection *c, curl_socket_t fd, int events) {
  int running = 0;
  (void)curl_multi_socket_action(c->multi, fd, events, &running);
}

/* Runs libcurl's timer if it has expired. libcurl calls the timer callback
 * only when its next deadline changes, and our clock may read a hair ahead
 * of its own: the deadline is asked for again rather than assumed gone.
 * Returns whether it ran. */
static int run_timer(struct connection *c, double now) {
  long ms = -1;
  if (c->timer_at < 0 || c->timer_at > now) return 0;
  act(c, CURL_SOCKET_TIMEOUT, 0);
  if (curl_multi_timeout(c->multi, &ms) == CURLM_OK)
    c->timer_at = ms < 0 ? -1 : openai_monotonic() + (double)ms / 1000.0;
  return 1;
}

/* Fills c->pollfds with c's sockets; returns how many (fewer when memory
 * to grow the array ran out: the others wait for the next drive). */
static size_t collect(struct connection *c) {
  struct watched_socket *w;
  size_t n = 0;
  if (c->pollfds_cap < c->socket_count) {
    size_t cap = c->socket_count < 8 ? 8 : c->socket_count * 2;
    struct pollfd *grown = realloc(c->pollfds, cap * sizeof *grown);
    if (grown != NULL) {
      c->pollfds = grown;
      c->pollfds_cap = cap;
    }
  }
  for (w = c->sockets; w != NULL && n < c->pollfds_cap; w = w->next) {
    if (w->what == CURL_POLL_NONE) continue; /* as for the epoll set */
    c->pollfds[n].fd = w->fd;
    c->pollfds[n].events = (short)((w->what & CURL_POLL_IN ? POLLIN : 0) | (w->what & CURL_POLL_OUT ? POLLOUT : 0));
    c->pollfds[n].revents = 0;
    n++;
  }
  return n;
}

void connection_drive_wait(struct connection *c, long ms) {
  size_t n, i;
  double now;
  if (c->multi == NULL) return;
  n = collect(c);
  now = openai_monotonic();
  if (ms > 0 && c->timer_at >= 0) {
    double left = (c->timer_at - now) * 1000.0;
    if (left < (double)ms) ms = left <= 0 ? 0 : (long)ceil(left);
  }
  /* Each action may add and remove sockets: the array is ours, copied. */
  if (poll(c->pollfds, (nfds_t)n, (int)ms) > 0) {
    for (i = 0; i < n; i++) {
      short r = c->pollfds[i].revents;
      int events = (r & (POLLIN | POLLHUP) ? CURL_CSELECT_IN : 0) | (r & POLLOUT ? CURL_CSELECT_OUT : 0) |
                   (r & (POLLERR | POLLNVAL) ? CURL_CSELECT_ERR : 0);
      if (events != 0) act(c, c->pollfds[i].fd, events);
    }
  }
  run_timer(c, openai_monotonic());
  read_messages(c);
}

void connection_drive(struct connection *c) {
  connection_drive_wait(c, 0);
}

/* ---- the Loop ---- */

/* Registry key of the Lua state's Loop: its address. */
static const char loop_key = 0;

static struct loop *check_loop(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, OPENAI_LOOP_MT);
}

/* Makes l this process's (rule 7 of transfer.h): in a child of fork(), its
 * connections are claimed (forsaken with their sockets, no epoll_ctl), and
 * the child's descriptor of the parent's epoll instance is closed, which
 * changes nothing for the parent, for a new set. */
static void loop_claim_as(struct loop *l, pid_t self) {
  if (l->epfd < 0 || l->pid == self) return;
  while (l->members != NULL) {
    struct connection *c = l->members;
    (void)connection_claim(c); /* forsakes c, which leaves l */
    if (c->loop == l) detach(l, c, 0); /* a call of the parent still waits on c */
  }
  close(l->epfd);
  l->epfd = epoll_create1(EPOLL_CLOEXEC);
  l->pid = self;
}

static void loop_claim(struct loop *l) {
  loop_claim_as(l, getpid());
}

struct loop *loop_push(lua_State *L) {
  struct loop *l;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &loop_key);
  if (lua_type(L, -1) == LUA_TUSERDATA) return lua_touserdata(L, -1);
  lua_pop(L, 1);
  l = lua_newuserdatauv(L, sizeof *l, 0);
  l->epfd = -1;
  l->pid = getpid();
  l->members = NULL;
  l->woken = NULL;
  l->woken_len = l->woken_cap = 0;
  l->rescan = 0;
  l->by_fd = NULL;
  l->by_fd_cap = 0;
  luaL_setmetatable(L, OPENAI_LOOP_MT);
  l->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (l->epfd < 0) luaL_error(L, "cannot create an epoll set: %s", strerror(errno));
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &loop_key);
  return l;
}

int loop_join(struct loop *l, struct connection *c) {
  struct watched_socket *w;
  loop_claim_as(l, c->pid); /* c was claimed: its pid is this process's */
  if (l->epfd < 0) return 0;
  if (c->loop == l) return 1;
  c->loop = l;
  c->loop_next = l->members;
  l->members = c;
  for (w = c->sockets; w != NULL; w = w->next) set_add(l, w); /* a stream's, opened before */
  return 1;
}

/* The transfers on l's connections that have not finished. */
static size_t in_progress(const struct loop *l) {
  const struct connection *c;
  size_t n = 0;
  for (c = l->members; c != NULL; c = c->loop_next) {
    const struct pending *p;
    const struct stream *s;
    for (p = c->pendings; p != NULL; p = p->next)
      if (p->transfer.easy != NULL && !p->transfer.done) n++;
    for (s = c->streams; s != NULL; s = s->next)
      if (s->transfer.active && !s->transfer.done) n++;
  }
  return n;
}

/* The earliest of libcurl's timers and the streams' deadlines, or < 0. */
static double earliest(const struct loop *l) {
  const struct connection *c;
  double next = -1;
  for (c = l->members; c != NULL; c = c->loop_next) {
    const struct stream *s;
    if (c->timer_at >= 0 && (next < 0 || c->timer_at < next)) next = c->timer_at;
    for (s = c->streams; s != NULL; s = s->next) {
      double at = stream_deadline(s);
      if (at >= 0 && (next < 0 || at < next)) next = at;
    }
  }
  return next;
}

/* Acts on a ready descriptor of whichever connection has it. */
static void dispatch(struct loop *l, int fd, uint32_t ready) {
  struct connection *c;
  int events = (ready & (EPOLLIN | EPOLLHUP) ? CURL_CSELECT_IN : 0) | (ready & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
               (ready & EPOLLERR ? CURL_CSELECT_ERR : 0);
  if (fd >= 0 && (size_t)fd < l->by_fd_cap && (c = l->by_fd[fd]) != NULL) {
    act(c, fd, events);
    return;
  }
  for (c = l->members; c != NULL; c = c->loop_next) {
    struct watched_socket *w;
    for (w = c->sockets; w != NULL; w = w->next) {
      if (w->fd == fd) {
        act(c, fd, events);
        return;
      }
    }
  }
  { /* nobody's: a socket gone without a word, whose number would spin */
    struct epoll_event ev;
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, &ev);
  }
}

/* Runs expired timers, marks finished transfers done and fails streams
 * past their deadline, on every connection of l. Returns whether it did
 * anything. */
static int run_due(struct loop *l) {
  struct connection *c;
  double now = openai_monotonic();
  int worked = 0;
  for (c = l->members; c != NULL; c = c->loop_next) {
    struct stream *s;
    worked |= run_timer(c, now);
    read_messages(c);
    for (s = c->streams; s != NULL; s = s->next) {
      int was_done = s->transfer.done;
      stream_check_deadline(s, now);
      worked |= s->transfer.done && !was_done;
    }
  }
  return worked;
}

static long milliseconds_until(double at, double now, long most) {
  double ms = (at - now) * 1000.0;
  if (ms <= 0) return 0;
  return ms < (double)most ? (long)ceil(ms) : most;
}

/* loop:poll([timeout_seconds]) -> number of transfers still in progress
 * Waits at most timeout_seconds (default 0: not at all) for a socket or a
 * timer, then acts on all that is due. Returns at once when nothing is in
 * progress. */
static int loop_poll(lua_State *L) {
  struct loop *l = check_loop(L, 1);
  lua_Number seconds = luaL_optnumber(L, 2, 0);
  struct interrupt_watch watch;
  double deadline;
  luaL_argcheck(L, seconds >= 0, 2, "timeout must be a non-negative number of seconds");
  loop_claim(l);
  if (l->epfd < 0) return luaL_error(L, "the loop is closed");
  deadline = openai_monotonic() + (double)seconds;
  interrupt_watch_start(L, &watch);
  for (;;) {
    struct epoll_event events[POLL_EVENTS];
    double now = openai_monotonic(), next = earliest(l);
    long ms = milliseconds_until(deadline, now, INTERRUPT_SLICE_MS);
    int n, i, worked;
    if (in_progress(l) == 0) break;
    if (next >= 0) ms = milliseconds_until(next, now, ms);
    n = epoll_wait(l->epfd, events, POLL_EVENTS, (int)ms);
    for (i = 0; i < n; i++) dispatch(l, events[i].data.fd, events[i].events);
    worked = run_due(l) || n > 0;
    if (worked || openai_monotonic() >= deadline) break;
    /* No pointer is held across the hook: it may close any connection. */
    if (interrupt_pending(&watch) && interrupt_run(&watch) != LUA_OK) return lua_error(L);
  }
  lua_pushinteger(L, (lua_Integer)in_progress(l));
  return 1;
}

/* loop:fd() -> the epoll descriptor: readable when a socket poll() would
 * act on is ready (timers do not show there: see loop:timeout()). */
static int loop_fd(lua_State *L) {
  struct loop *l = check_loop(L, 1);
  loop_claim(l);
  if (l->epfd < 0) return luaL_error(L, "the loop is closed");
  lua_pushinteger(L, l->epfd);
  return 1;
}

/* loop:timeout() -> seconds until poll() must run even if fd() stays quiet
 *                -> nil  nothing is in progress, or only a socket can move
 *                        it on */
static int loop_timeout(lua_State *L) {
  struct loop *l = check_loop(L, 1);
  double next, now;
  loop_claim(l);
  if (l->epfd < 0 || in_progress(l) == 0 || (next = earliest(l)) < 0) return 0;
  now = openai_monotonic();
  lua_pushnumber(L, next > now ? (lua_Number)(next - now) : 0);
  return 1;
}

/* __gc: the Loop lives as long as its Lua state. Its connections go on
 * without it (their blocking calls drive them); the epoll set closes. */
static int loop_gc(lua_State *L) {
  struct loop *l = check_loop(L, 1);
  while (l->members != NULL) detach(l, l->members, 0); /* the set goes whole */
  if (l->epfd >= 0) close(l->epfd);
  l->epfd = -1;
  free(l->woken); /* every entry's connection was detached: the list is empty */
  free(l->by_fd);
  l->by_fd = NULL;
  l->by_fd_cap = 0;
  l->woken = NULL;
  l->woken_len = l->woken_cap = 0;
  return 0;
}

/* loop:woken() -> keys, rescan
 * The transfers that moved on since the last call, as light userdata (the
 * address of each Pending or Stream: what its wake_key() gives), and
 * whether a waiter may have been missed, so that every waiter must be
 * asked. Each call starts a new list. */
static int loop_woken(lua_State *L) {
  struct loop *l = check_loop(L, 1);
  size_t i, n = l->woken_len;
  /* Finalizers may run while the table is made, and change the list: only
   * what it holds after is taken, and anything beyond the table's size
   * asks for a rescan. */
  lua_createtable(L, n > INT_MAX ? INT_MAX : (int)n, 0);
  if (l->woken_len > n) l->rescan = 1;
  if (l->woken_len < n) n = l->woken_len;
  for (i = 0; i < l->woken_len; i++) l->woken[i]->woken = 0;
  for (i = 0; i < n; i++) {
    lua_pushlightuserdata(L, l->woken[i]);
    lua_rawseti(L, -2, (int)i + 1);
  }
  l->woken_len = 0;
  lua_pushboolean(L, l->rescan);
  l->rescan = 0;
  return 2;
}

static int loop_tostring(lua_State *L) {
  struct loop *l = check_loop(L, 1);
  if (l->epfd < 0)
    lua_pushliteral(L, "openai.Loop (closed)");
  else
    lua_pushfstring(L, "openai.Loop (%p)", (void *)l);
  return 1;
}

/* core.loop() -> the Lua state's Loop, the same one on every call */
static int core_loop(lua_State *L) {
  loop_push(L);
  return 1;
}

void openai_loop_register(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"poll", loop_poll},
    {"fd", loop_fd},
    {"timeout", loop_timeout},
    {"woken", loop_woken},
    {NULL, NULL}
  };
  static const luaL_Reg metamethods[] = {
    {"__gc", loop_gc},
    {"__tostring", loop_tostring},
    {"__index", NULL}, /* placeholder */
    {NULL, NULL}
  };
  openai_register_class(L, OPENAI_LOOP_MT, metamethods, methods);
  lua_pushcfunction(L, core_loop);
  lua_setfield(L, -2, "loop");
}
