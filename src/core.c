/* openai.core: the module entry. It wires the C parts together (codec/: the
 * JSON, SSE and response-head codecs, which any transport can use; curl/:
 * the libcurl transport) and adds the few system helpers the Lua layer
 * needs. */
#define _POSIX_C_SOURCE 200809L

#include <curl/curl.h>
#include <math.h>
#include <time.h>

#include "compat.h"
#include "int64.h"
#include "interrupt.h"
#include "codec/http_head.h"
#include "codec/json.h"
#include "codec/sse_decoder.h"
#include "curl/http.h"

#if defined(__ANDROID__)
#define OPENAI_OS "Android"
#elif defined(__linux__)
#define OPENAI_OS "Linux"
#elif defined(__APPLE__)
#define OPENAI_OS "MacOS"
#elif defined(_WIN32)
#define OPENAI_OS "Windows"
#elif defined(__FreeBSD__)
#define OPENAI_OS "FreeBSD"
#elif defined(__OpenBSD__)
#define OPENAI_OS "OpenBSD"
#else
#define OPENAI_OS "Unknown"
#endif

#if defined(__x86_64__) || defined(_M_X64)
#define OPENAI_ARCH "x64"
#elif defined(__aarch64__)
#define OPENAI_ARCH "arm64"
#elif defined(__arm__)
#define OPENAI_ARCH "arm"
#elif defined(__i386__)
#define OPENAI_ARCH "x32"
#else
#define OPENAI_ARCH "unknown"
#endif

/* sleep(seconds): blocks the calling thread; used between retries. It
 * sleeps in short slices so that Ctrl-C (a hook set by the interpreter's
 * signal handler) ends it at once; the hook's error is raised here. */
static int core_sleep(lua_State *L) {
  lua_Number seconds = luaL_checknumber(L, 1);
  struct interrupt_watch watch;
  double deadline;
  luaL_argcheck(L, seconds >= 0 && seconds < 1e9, 1, "seconds out of range");
  lua_settop(L, 0);
  interrupt_watch_start(L, &watch);
  deadline = openai_monotonic() + (double)seconds;
  for (;;) {
    double left = deadline - openai_monotonic();
    struct timespec slice;
    if (left <= 0) break;
    if (left > INTERRUPT_SLICE_MS / 1000.0) left = INTERRUPT_SLICE_MS / 1000.0;
    slice.tv_sec = (time_t)left;
    slice.tv_nsec = (long)((left - (double)slice.tv_sec) * 1e9);
    nanosleep(&slice, NULL); /* a signal ends it early: that is the point */
    if (interrupt_pending(&watch) && interrupt_run(&watch) != LUA_OK) return lua_error(L);
  }
  return 0;
}

/* monotonic() -> seconds from an arbitrary start, for measuring intervals. */
static int core_monotonic(lua_State *L) {
  lua_pushnumber(L, (lua_Number)openai_monotonic());
  return 1;
}

/* http_date(text) -> seconds since the epoch | nil (RFC 7231 dates and the
 * older forms, via libcurl's parser). */
static int core_http_date(lua_State *L) {
  time_t t = curl_getdate(luaL_checkstring(L, 1), NULL);
  if (t == (time_t)-1) return 0;
  lua_pushinteger(L, (lua_Integer)t);
  return 1;
}

static const luaL_Reg core_functions[] = {
  {"json_decode", openai_json_decode_lua},
  {"json_encode", openai_json_encode_lua},
  {"sleep", core_sleep},
  {"monotonic", core_monotonic},
  {"http_date", core_http_date},
  {"http_head", openai_http_head_lua},
  {"http_token", openai_http_token_lua},
  {"sse_decoder", openai_sse_decoder_new},
  {"int64_functions", openai_int64_functions_lua},
  {NULL, NULL}
};

OPENAI_EXPORT int luaopen_openai_core(lua_State *L);

OPENAI_EXPORT int luaopen_openai_core(lua_State *L) {
  if (!openai_http_global_init()) return luaL_error(L, "cannot initialise libcurl");
  openai_compat_open(L);
  interrupt_open(L);
  luaL_newlib(L, core_functions);
  openai_json_open(L);
  openai_int64_open(L);
  luaL_getmetatable(L, OPENAI_ARRAY_MT);
  lua_setfield(L, -2, "array_mt");
  openai_pushnull(L);
  lua_setfield(L, -2, "null");
  openai_sse_decoder_open(L);
  openai_http_open(L);
  lua_pushstring(L, OPENAI_OS);
  lua_setfield(L, -2, "os");
  lua_pushstring(L, OPENAI_ARCH);
  lua_setfield(L, -2, "arch");
  lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
  lua_setfield(L, -2, "curl_version");
  return 1;
}
