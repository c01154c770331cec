/* The libcurl transport's entry: libcurl's global initialisation, and the
 * one place its classes are registered and the Connection's methods
 * assembled from the parts that implement them. */
#define _POSIX_C_SOURCE 200809L

#include "http.h"

#include <curl/curl.h>
#include <pthread.h>

#include "connection.h"
#include "loop.h"
#include "pending.h"
#include "stream.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init_once(void) {
  /* A failure here shows up as curl_easy_init() returning NULL. */
  (void)curl_global_init(CURL_GLOBAL_DEFAULT);
}

int openai_http_global_init(void) {
  return pthread_once(&global_once, global_init_once) == 0;
}

void openai_http_open(lua_State *L) {
  static const luaL_Reg connection_more[] = {
    {"stream", openai_stream_open},
    {"stream_start", openai_stream_start},
    {"start", openai_pending_start},
    {NULL, NULL}
  };
  openai_connection_register(L, connection_more);
  openai_stream_register(L);
  openai_pending_register(L);
  openai_loop_register(L);
}
