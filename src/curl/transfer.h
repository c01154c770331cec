/* Transfers, streams and connections: what transfer.c (libcurl easy
 * handles), outcome.c (results as Lua values), connection.c (the Connection
 * userdata), stream.c (the Stream userdata), pending.c (the Pending
 * userdata) and loop.c (driving multi handles, the Loop userdata) share.
 *
 * A transfer is one libcurl easy handle with the buffers it fills. A stream
 * is a transfer whose 2xx body is decoded into queued events. A pending is
 * a request started without waiting, on its own easy handle. A connection
 * is a client's multi handle (connection cache, keep-alive, TLS sessions)
 * with its own transfer for blocking requests and the lists of its open
 * streams and pendings.
 *
 * Driving. Every multi handle is driven through libcurl's socket interface
 * alone (curl_multi_socket_action), never curl_multi_perform: libcurl does
 * not support mixing the two on one handle, and a handle that joins the
 * Loop (a Lua state's epoll set) mid-life would otherwise hold transfers
 * whose sockets it never reported. The socket callback keeps each
 * connection's list of sockets with the events libcurl waits for (and, for
 * a connection in the Loop, the epoll set in step); the timer callback keeps
 * its next timeout. A blocking call waits with poll() on its connection's
 * sockets alone; loop:poll() waits on the epoll set of every connection
 * that joined. Both then act on what is ready and on expired timers of the
 * connections they wait for, so either can make any transfer progress.
 *
 * Ownership: the rules every change here must keep.
 *
 * 1. Memory. The connection's transfer lives inside the Connection userdata,
 *    a stream (its transfer inside) is the Stream userdata, a pending (its
 *    transfer inside) the Pending userdata; every buffer and header list
 *    hangs off a transfer and is freed by transfer_release, every queued
 *    event and decoder buffer hangs off a stream and is freed by
 *    stream_release, which releases its transfer too (close(), __gc,
 *    __close), or by the next request (which may keep the header list:
 *    rule 6). A pending's response stays in its transfer until result()
 *    moves it out (rule 4) or its close() frees it. The records of a
 *    connection's sockets hang off the connection and are freed when
 *    libcurl reports the socket removed, or by connection_forget_sockets.
 *    A Lua error raised while a request is prepared therefore leaks
 *    nothing.
 * 2. Request bodies. libcurl reads the body from the Lua string the caller
 *    passed (CURLOPT_POSTFIELDS, no copy). The userdata that owns the
 *    transfer anchors that string in its user value BODY_SLOT from the
 *    moment the transfer starts until it has stopped, so libcurl never reads
 *    freed memory, whatever Lua collects meanwhile (a stream goes on
 *    uploading after create() has returned it).
 * 3. Callbacks. libcurl calls on_header, transfer_on_body (a request's
 *    body), on_stream_body (a stream's) and on_open_socket only from
 *    curl_multi_socket_action and curl_easy_pause, which only
 *    connection_drive, loop:poll() and stream reads call; its socket and
 *    timer callbacks (loop.c) also from curl_multi_add_handle,
 *    curl_multi_remove_handle and curl_multi_cleanup. They touch C memory
 *    only: no Lua API call, so no Lua error can unwind libcurl's frames.
 * 4. Lua code can run at any allocation. Any Lua API call that allocates may
 *    run a finalizer, and a finalizer may close this connection or stream, or
 *    make another request or read on it (which drives libcurl: buffers grow,
 *    move or are freed). So nothing is converted to Lua values straight from
 *    a transfer: a finished response's status, head, body and failure move
 *    into a `struct outcome`, a stream event is unlinked from its queue, and
 *    the C frame that took them owns them, converts them inside one
 *    protected call, and frees them (or hands buffers back for reuse)
 *    whether or not that call failed.
 * 5. Waiting. Between starting a transfer and taking its outcome in a
 *    blocking call, no Lua code runs except a debug hook (Ctrl-C), run by
 *    interrupt_run in protected mode while the transfer is marked busy. A
 *    transfer started without waiting (a pending, a stream from
 *    stream_start) is never busy: Lua code runs between the calls that
 *    drive it, each of which checks its state again. loop:poll() runs a
 *    hook with no transfer busy and holds no pointer across it. Meanwhile a nested
 *    request or read on that busy transfer is an error, and close() of it or
 *    of its connection is deferred: the waiting frame performs it when the
 *    hook returns. Finalizers and hooks may run at the other points where
 *    the C functions allocate (reading arguments, growing the stack,
 *    accounting memory to the GC); each such point comes before the
 *    transfer is touched, and the state is checked again after it.
 * 6. Request header lists. A transfer's list of request headers (a
 *    curl_slist) is its own (rule 1), built from the caller's table of
 *    lines. The connection's request transfer keeps its list for the next
 *    request that passes the very same table (the connection's
 *    `headers_from`, its address): the Connection anchors that table in its
 *    user value HEADERS_SLOT from the moment the list is built from it
 *    until another table replaces it there or close() clears it, and
 *    headers_from is cleared before the list is freed. So a match is that
 *    table, alive: no other table can have its address meanwhile. The
 *    caller never changes a table once passed (the Lua layer passes its
 *    shared lines, immutable, or a fresh table). A stream's transfer builds
 *    its list once and keeps no table.
 * 7. Processes. A connection's multi handle, with its pooled sockets and
 *    their TLS state, and the easy handles of its streams belong to the
 *    process that made the multi handle (`pid`), and so do the easy
 *    handles of its pendings and the Loop's epoll set (the child's copy of
 *    that descriptor names the parent's epoll instance: a change made
 *    through it would change the parent's set). A child made by fork()
 *    has copies of them that share the parent's sockets: a byte it read or
 *    wrote there would be taken from or slipped into the parent's
 *    exchanges, and libcurl's cleanup would read on them and write a TLS
 *    close_notify. So every entry that would call libcurl on a connection
 *    (a request, a stream's start, read and close, a pending's start,
 *    result and close, the connection's close) first calls
 *    connection_claim, which in another process forsakes all of it without
 *    one libcurl call and one epoll_ctl, and starts a new multi handle
 *    there; every use of the Loop first calls loop_claim, which claims its
 *    connections and, in another process, closes the child's descriptor of
 *    the parent's epoll instance for a new one of its own.
 *    What is forsaken is a one-time leak per client per fork: the handles'
 *    memory, kept on a list so that it is held rather than lost, and the
 *    child's descriptors of those sockets (libcurl keeps them, and closing
 *    them would not end the parent's connections anyway). The streams and
 *    pendings are marked `forked`: a read or result fails, a close frees
 *    our own buffers only.
 *    The request transfer's easy handle holds no connection between
 *    requests, so the child goes on with it; one still in the multi handle
 *    (a request cut short) is forsaken for a copy of its settings. Not
 *    supported: fork() from a debug hook that runs while a call waits.
 *    The child's copy of that waiting call goes on with the parent's
 *    handles; until it returns, connection_claim refuses (rather than
 *    free that call's transfer under it), so the hook's own calls on that
 *    client fail.
 */
#ifndef OPENAI_TRANSFER_H
#define OPENAI_TRANSFER_H

#include <curl/curl.h>
#include <poll.h>
#include <sys/types.h>

#include "buffer.h"
#include "compat.h"
#include "codec/event_queue.h"
#include "codec/sse.h"

/* User values of the userdata that own transfers. */
#define BODY_SLOT 1       /* the request body being sent (rule 2) */
#define CONNECTION_SLOT 2 /* streams, pendings: the connection, kept alive */
#define HEADERS_SLOT 2    /* connections: the table of header lines of
                           * the request transfer's list (rule 6) */

/* A transfer's buffers larger than this are freed after each response
 * rather than kept for the next one. */
#define KEEP_BUFFER_BYTES (256 * 1024)

struct connection;

/* What every libcurl exchange has: a request or a stream. */
struct transfer {
  CURL *easy; /* NULL once released */
  struct connection *conn;
  struct curl_slist *headers; /* request headers */
  struct buffer body;         /* response body (not a 2xx stream's: events) */
  struct buffer head;         /* header block of the final response */
  size_t max_response_bytes;
  size_t max_response_values; /* JSON values one decode may build */
  size_t footprint;   /* C memory this transfer holds, as told to the GC */
  size_t beside;      /* C memory its owner holds beside it (a stream's
                       * events and decoder), counted in footprint */
  long status;        /* final status, once the headers are complete */
  int headers_done;   /* the final response's header block is complete */
  int active;         /* added to the connection's multi handle */
  int done;           /* libcurl finished the transfer */
  int too_large;
  int out_of_memory;
  int busy;           /* a C frame waits on it and may run a hook (rule 5) */
  int close_pending;  /* its owner's close() came while busy */
  int socket_errno;   /* errno of a failed socket(), e.g. EMFILE */
  int woken;          /* on its Loop's woken list (loop.c) */
  int not_spare;      /* the handle has state the next transfer must not
                       * inherit (it was paused): cleaned up, not kept */
  CURLcode result;
  double last_activity; /* monotonic seconds of the last byte received */
  double timeout;       /* seconds; 0 for none */
  char errbuf[CURL_ERROR_SIZE];
};

/* A Stream userdata: a transfer whose 2xx body the SSE decoder turns into
 * queued events, read one at a time. */
struct stream {
  struct transfer transfer;  /* first: libcurl's callbacks get the stream */
  struct event_queue events; /* decoded events not yet read */
  struct sse_parser sse;
  int paused;         /* the write callback paused it: too many unread events */
  int sse_finished;   /* sse_finish ran after the end */
  int forked;         /* a stream of another process, forsaken here (rule 7) */
  int nonblocking;    /* started by stream_start: head() takes the head, and
                       * its timeouts hold without a waiting read */
  int head_taken;     /* the head was handed to Lua (conn:stream, head()) */
  double started;     /* monotonic seconds when the transfer started */
  double idle_since;  /* when a read last took an event (silence counts
                       * from it, or from the last byte if later) */
  struct stream *next; /* on its connection's list */
};

/* A Pending userdata: a request started without waiting. */
struct pending {
  struct transfer transfer; /* first: libcurl's callbacks get the pending */
  int aborted;        /* released before it finished: its close() or the
                       * connection's */
  int by_owner;       /* aborted by its own close(), not the connection's */
  int taken;          /* result() handed its outcome to Lua */
  int forked;         /* a pending of another process, forsaken (rule 7) */
  int decode;          /* result() decodes a JSON body (conn:request's) */
  int request_id_only; /* and may skip the headers (conn:request's) */
  struct pending *next; /* on its connection's list */
};

struct loop;
struct watched_socket;

/* How many easy handles of ended pendings and streams a connection keeps
 * for the next ones: a new handle (curl_easy_duphandle) and its cleanup
 * cost more than the rest of a small request's own work. */
#define TRANSFER_SPARE_HANDLES 16

struct connection {
  CURLM *multi; /* NULL once closed */
  pid_t pid;    /* the process that made `multi` (rule 7) */
  struct transfer request;  /* blocking requests */
  const void *headers_from; /* the anchored table request.headers were
                             * built from (rule 6), or NULL */
  struct stream *streams;   /* open streams: connection_add_stream */
  struct pending *pendings; /* pendings not yet released */
  struct watched_socket *sockets; /* libcurl's sockets (loop.c) */
  size_t socket_count;
  struct pollfd *pollfds;   /* poll()'s array for them, grown as needed */
  size_t pollfds_cap;
  double timer_at;          /* libcurl's next timeout (monotonic seconds),
                             * or < 0 for none */
  struct loop *loop;        /* the Loop whose epoll set has its sockets */
  struct connection *loop_next; /* on that Loop's list */
  int hooks_running;  /* frames waiting on this connection inside a hook */
  int close_pending;  /* close() came while a hook ran */
  size_t footprint;   /* C memory of all its transfers */
  size_t accounted;   /* the part of it already told to the GC */
  size_t sockets_opened; /* since they were last told to the GC */
  size_t open_streams;   /* streams on the list */
  size_t collect_above;  /* open streams that bring a full collection
                          * (0: an eighth of the file limit) */
  CURL *spares[TRANSFER_SPARE_HANDLES]; /* easy handles of ended transfers,
                                         * not in the multi handle, kept
                                         * for the next ones (transfer.c) */
  int spare_count;
};

/* What a finished transfer hands to Lua (rule 4). */
struct outcome {
  long status;
  int headers_done;
  int streaming;      /* a stream's: a 2xx body was events */
  int too_large;
  int out_of_memory;
  int socket_errno;
  CURLcode result;
  size_t max_response_bytes;
  size_t max_response_values;
  struct buffer head;
  struct buffer body;
  char errbuf[CURL_ERROR_SIZE];
};

/* ---- transfer.c ---- */

/* Sets the options every easy handle starts from. */
void transfer_set_defaults(CURL *easy);
/* Points the easy handle's callbacks and error buffer at t. */
void transfer_set_pointers(struct transfer *t);
/* Initialises t with an easy handle that has the settings of the
 * connection's request handle: a spare one, or a copy. Returns 0 on
 * failure. */
int transfer_init_from(struct transfer *t, struct connection *conn);
/* Cleans up the connection's spare easy handles (closing it). */
void transfer_drop_spares(struct connection *c);
/* Forgets them, another process's (rule 7): kept, not cleaned up. */
void transfer_forsake_spares(struct connection *c);
/* Reads method, url, headers table, body and timeout from the Lua stack
 * (raising on bad arguments; allocations stay owned by t) and sets them on
 * the easy handle, the timeout as libcurl's limit on the whole transfer.
 * The arguments start at index first. The caller anchors the body string
 * (rule 2) before starting. keep_headers keeps the header list t has (the
 * caller knows it was built from the same table: rule 6); otherwise it is
 * built afresh. */
void transfer_prepare(lua_State *L, struct transfer *t, int first, int keep_headers);
int transfer_start(struct transfer *t);
void transfer_stop(struct transfer *t);    /* removes it from the multi handle */
/* Frees everything; idempotent. The easy handle of a pending or a stream
 * goes to its connection's spares while there is room. */
void transfer_release(struct transfer *t);
/* Recounts t's footprint (with t->beside) into its connection's. */
void transfer_update_footprint(struct transfer *t);
/* The write callback of a request, and of a stream's response that is not
 * 2xx: appends to t->body, within max_response_bytes. */
size_t transfer_on_body(char *ptr, size_t size, size_t nmemb, void *t);
/* Keeps a libcurl handle of another process, never to be freed (rule 7). */
void forsaken_keep(void *handle);
/* Forgets t's easy handle, another process's: kept, not cleaned up. */
void transfer_forsake(struct transfer *t);

enum wait_result { WAIT_READY, WAIT_TIMEOUT, WAIT_CLOSED, WAIT_HOOK_ERROR };
enum wait_limit {
  WAIT_NO_LIMIT, /* libcurl enforces the timeout (blocking requests) */
  WAIT_FIXED,    /* t->timeout from `since` */
  WAIT_SILENCE   /* t->timeout from `since` or the last byte, whichever is later */
};
/* What a wait's test says after each drive. DRIVE_AGAIN: not ready, but it
 * resumed a paused stream, whose held bytes no socket will signal. */
enum readiness { NOT_READY, READY, DRIVE_AGAIN };

/* Drives t's connection until ready(t) says READY, in slices that let a
 * hook run (rule 5). WAIT_TIMEOUT: t is marked done with a timeout.
 * WAIT_CLOSED: a hook closed t's connection (released now, unless an outer
 * hook still runs) or t itself (t->close_pending is left for the caller).
 * WAIT_HOOK_ERROR: a hook raised; its error object is on the stack and t is
 * as it was: the caller cleans up, then raises it. */
enum wait_result transfer_wait(lua_State *L, struct transfer *t, enum readiness (*ready)(struct transfer *),
                               double since, enum wait_limit limit, const char *what);

/* Ends t as timed out: stops it, marks it done with CURLE_OPERATION_TIMEDOUT
 * and "no <what> within <timeout> s". */
void transfer_fail_timeout(struct transfer *t, const char *what);

/* ---- loop.c: driving a multi handle through the socket interface ---- */

/* Gives a new multi handle of c libcurl's socket and timer callbacks. */
void connection_watch(struct connection *c);
/* Waits at most ms (0: not at all) for c's sockets or timer, acts on the
 * sockets that are ready and on an expired timer, and marks finished
 * transfers done. */
void connection_drive_wait(struct connection *c, long ms);
/* Runs libcurl once without blocking; marks finished transfers done. */
void connection_drive(struct connection *c);
/* Takes c's sockets out of its Loop's epoll set and c off the Loop. */
void connection_leave_loop(struct connection *c);
/* After curl_multi_cleanup, or for a forsaken multi handle (rule 7): frees
 * c's socket records with no epoll_ctl and no libcurl call, and takes c off
 * its Loop's list. */
void connection_forget_sockets(struct connection *c);
/* The Lua state's Loop, made on first use, pushed onto the stack. May run
 * finalizers (it allocates the first time). */
struct loop *loop_push(lua_State *L);
/* Puts c's sockets into l's epoll set from now on, before a transfer that
 * l is to drive starts; c must have been claimed (connection_claim) just
 * before. Returns 0 when l is closed. */
int loop_join(struct loop *l, struct connection *c);
/* Puts t on its connection's Loop's woken list (once; nothing when the
 * connection is in no Loop): t has moved on, and whoever waits on it may
 * go on. C memory only: libcurl's callbacks call it. */
void loop_wake(struct transfer *t);
/* Takes t off that list, before t goes (transfer_release). */
void loop_forget(struct transfer *t);

/* ---- connection.c ---- */

/* Makes c this process's (rule 7): after a fork, forsakes what it holds of
 * the parent and starts a new multi handle. Call it before anything that
 * calls libcurl on c or its transfers. Returns NULL, or why c cannot be
 * used in this process: libcurl gave no new handles (c is then closed), or
 * a call of the parent still waits on c in this very stack. */
const char *connection_claim(struct connection *c);

/* One close for a connection's close(), __gc and __close, deferred while a
 * hook runs (rule 5). Streams still open are aborted: their easy handles
 * live in its multi handle. */
void connection_release(struct connection *c);

/* Tells the GC about the C memory and the sockets the connection's
 * transfers took since the last call (lua_gc steps), so that it collects
 * unreachable streams and clients in time. May run finalizers: call it
 * before touching any transfer, and check the state again after it. */
void connection_account(lua_State *L, struct connection *c);

/* The list of c's open streams, the one place it and open_streams change. */
void connection_add_stream(struct connection *c, struct stream *s);
void connection_remove_stream(struct connection *c, struct stream *s);
/* The list of c's pendings. */
void connection_add_pending(struct connection *c, struct pending *p);
void connection_remove_pending(struct connection *c, struct pending *p);

/* ---- stream.c: what a connection does to its streams ---- */

/* The connection closes under s: frees all s holds, leaves it closed. */
void stream_abort(struct stream *s);
/* s is of another process and already off its connection's list: frees our
 * own buffers, calls nothing of libcurl, marks it forked (rule 7). */
void stream_forsake(struct stream *s);
/* When a stream from stream_start must have a byte, or fail as timed out
 * (monotonic seconds; < 0 for no limit now): the head, or a non-2xx body,
 * from its start; events from the later of its last byte and its last
 * read, unless events wait unread or it is paused. */
double stream_deadline(const struct stream *s);
/* Fails s as timed out if its deadline has passed. */
void stream_check_deadline(struct stream *s, double now);

/* ---- pending.c: what a connection does to its pendings ---- */

/* The connection closes under p: frees all p holds; result() says "closed". */
void pending_abort(struct pending *p);
/* p is of another process and already off its connection's list: frees our
 * own buffers, calls nothing of libcurl, marks it forked (rule 7). */
void pending_forsake(struct pending *p);

/* ---- outcome.c ---- */

/* Moves t's results into o (no allocation): buffers become o's. */
void outcome_take(struct outcome *o, struct transfer *t);
/* Converts o in one protected call, then frees o's buffers or gives them
 * back to `reuse` (which may be NULL or closed meanwhile). Returns the
 * number of values pushed; raises the conversion's error after cleaning up.
 *   OUTCOME_FAILURE   nil, kind, message
 *   OUTCOME_HEAD      status, headers
 *   OUTCOME_RESPONSE  status, headers, body[, decode error]  (body decoded as JSON when decode)
 *   OUTCOME_RESPONSE_ID  the same, but a 2xx whose body decodes to a JSON
 *                     object comes without the headers, with its
 *                     x-request-id value: status, false, object, request_id|nil */
enum outcome_form { OUTCOME_FAILURE, OUTCOME_HEAD, OUTCOME_RESPONSE, OUTCOME_RESPONSE_ID };
int outcome_push(lua_State *L, struct outcome *o, enum outcome_form form, int decode, struct transfer *reuse);
/* Whether a finished transfer failed (as opposed to having a response). */
int outcome_failed(const struct transfer *t);
/* Pushes nil, "closed", message. */
int outcome_push_closed(lua_State *L, const char *what);

#endif
