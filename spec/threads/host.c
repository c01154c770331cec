/* A host program that embeds Lua the way game engines and tool hosts do:
 * several threads, each with its own lua_State, all using openai at once
 * against one server.
 *
 *   host --base-url URL --api-key KEY [--threads N] [--retrieves N]
 *        [--streams N] [--lua-dir DIR] [--cpath PATTERN]
 *
 * Each thread creates its state (luaL_newstate + luaL_openlibs; the threads
 * start together behind a barrier, so states, `require "openai"` and the
 * module's one-time libcurl initialisation really race), sets package.path
 * to DIR/?.lua;DIR/?/init.lua (default "lua") and package.cpath to PATTERN
 * (default: whatever LUA_CPATH_5_4 / LUA_CPATH say), then runs
 * `retrieves` chat.completions.retrieve("chatcmpl-abc123") calls and
 * `streams` streamed chat.completions.create calls, checking every result
 * (the fixture's exact values; the streamed reply "Echo: <prompt>" put
 * together from all its chunks).
 *
 * Prints one line per thread and a last line
 *   total: threads=8 retrieves=8000/8000 streams=400/400 failures=0 seconds=...
 * and exits 0 only when every call succeeded. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define MAX_THREADS 256

static const char SCRIPT[] =
  "local base_url, api_key, id, n_retrieve, n_stream = ...\n"
  "local openai = require('openai')\n"
  "local client = openai.new { api_key = api_key, base_url = base_url, max_retries = 0, timeout = 120 }\n"
  "local ok_r, ok_s, failures, first = 0, 0, 0, nil\n"
  "local function fail(what)\n"
  "  failures = failures + 1\n"
  "  if first == nil then first = what end\n"
  "end\n"
  "local CONTENT = 'Mind of circuits hum, \\nLearning patterns in silence\\u{2014} \\nFuture\\'s quiet spark.'\n"
  "for i = 1, n_retrieve do\n"
  "  local cc, err = client.chat.completions.retrieve('chatcmpl-abc123')\n"
  "  if cc == nil then\n"
  "    fail(('retrieve %d: %s'):format(i, tostring(err)))\n"
  "  elseif cc.id ~= 'chatcmpl-abc123' or math.type(cc.seed) ~= 'integer' or cc.seed ~= 4944116822809979520\n"
  "      or math.type(cc.temperature) ~= 'float' or cc.temperature ~= 1.0 or cc.tool_choice ~= openai.null\n"
  "      or next(cc.metadata) ~= nil or cc.choices[1].message.content ~= CONTENT\n"
  "      or type(cc._request_id) ~= 'string' then\n"
  "    fail(('retrieve %d: unexpected object %s'):format(i, openai.json.encode(cc)))\n"
  "  else\n"
  "    ok_r = ok_r + 1\n"
  "  end\n"
  "end\n"
  "for i = 1, n_stream do\n"
  "  local prompt = ('thread %d stream %d'):format(id, i)\n"
  "  local stream, err = client.chat.completions.create {\n"
  "    model = 'gpt-4o-mini', messages = { { role = 'user', content = prompt } }, stream = true }\n"
  "  if stream == nil then\n"
  "    fail(('stream %d: %s'):format(i, tostring(err)))\n"
  "  else\n"
  "    local parts, chunks, finish = {}, 0, nil\n"
  "    local ok, why = pcall(function()\n"
  "      for chunk in stream do\n"
  "        chunks = chunks + 1\n"
  "        local choice = chunk.choices[1]\n"
  "        if choice and type(choice.delta.content) == 'string' then parts[#parts + 1] = choice.delta.content end\n"
  "        if choice and choice.finish_reason ~= openai.null then finish = choice.finish_reason end\n"
  "      end\n"
  "    end)\n"
  "    local text = table.concat(parts)\n"
  "    local words = select(2, prompt:gsub('%S+', '')) + 1\n"
  "    if not ok then\n"
  "      fail(('stream %d: %s'):format(i, tostring(why)))\n"
  "    elseif text ~= 'Echo: ' .. prompt or finish ~= 'stop' or chunks ~= words + 2 then\n"
  "      fail(('stream %d: got %q in %d chunks, finish %s'):format(i, text, chunks, tostring(finish)))\n"
  "    else\n"
  "      ok_s = ok_s + 1\n"
  "    end\n"
  "  end\n"
  "end\n"
  "client:close()\n"
  "return ok_r, ok_s, failures, first\n";

struct options {
  const char *base_url;
  const char *api_key;
  const char *lua_dir;
  const char *cpath;
  long threads, retrieves, streams;
};

struct job {
  const struct options *opts;
  pthread_barrier_t *start;
  int id;
  long ok_retrieves, ok_streams, failures;
  double seconds;
  char error[512];
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_error(struct job *j, const char *what) {
  snprintf(j->error, sizeof j->error, "%s", what ? what : "(no message)");
}

static void *run(void *arg) {
  struct job *j = arg;
  const struct options *o = j->opts;
  lua_State *L;
  double started;

  pthread_barrier_wait(j->start);
  started = now();
  L = luaL_newstate();
  if (L == NULL) {
    j->failures = 1;
    set_error(j, "luaL_newstate failed");
    return NULL;
  }
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", o->lua_dir, o->lua_dir);
  lua_setfield(L, -2, "path");
  if (o->cpath != NULL) {
    lua_pushstring(L, o->cpath);
    lua_setfield(L, -2, "cpath");
  }
  lua_pop(L, 1);

  if (luaL_loadbuffer(L, SCRIPT, sizeof SCRIPT - 1, "=threads") != LUA_OK) {
    j->failures = 1;
    set_error(j, lua_tostring(L, -1));
  } else {
    lua_pushstring(L, o->base_url);
    lua_pushstring(L, o->api_key);
    lua_pushinteger(L, j->id);
    lua_pushinteger(L, o->retrieves);
    lua_pushinteger(L, o->streams);
    if (lua_pcall(L, 5, 4, 0) != LUA_OK) {
      j->failures = 1;
      set_error(j, lua_tostring(L, -1));
    } else {
      j->ok_retrieves = (long)lua_tointeger(L, -4);
      j->ok_streams = (long)lua_tointeger(L, -3);
      j->failures = (long)lua_tointeger(L, -2);
      if (lua_isstring(L, -1)) set_error(j, lua_tostring(L, -1));
    }
  }
  lua_close(L);
  j->seconds = now() - started;
  return NULL;
}

static long number_arg(const char *name, const char *text, long max) {
  char *end;
  long v = strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || v < 0 || v > max) {
    fprintf(stderr, "host: bad value for %s: %s\n", name, text);
    exit(2);
  }
  return v;
}

static void usage(void) {
  fprintf(stderr,
          "usage: host --base-url URL --api-key KEY [--threads N] [--retrieves N] [--streams N]\n"
          "            [--lua-dir DIR] [--cpath PATTERN]\n");
  exit(2);
}

int main(int argc, char **argv) {
  struct options o = {NULL, NULL, "lua", NULL, 8, 1000, 50};
  struct job jobs[MAX_THREADS];
  pthread_t tids[MAX_THREADS];
  pthread_barrier_t start;
  long total_r = 0, total_s = 0, failures = 0, t;
  double started;
  int i;

  for (i = 1; i < argc; i += 2) {
    const char *name = argv[i];
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (value == NULL) usage();
    if (strcmp(name, "--base-url") == 0) o.base_url = value;
    else if (strcmp(name, "--api-key") == 0) o.api_key = value;
    else if (strcmp(name, "--lua-dir") == 0) o.lua_dir = value;
    else if (strcmp(name, "--cpath") == 0) o.cpath = value;
    else if (strcmp(name, "--threads") == 0) o.threads = number_arg(name, value, MAX_THREADS);
    else if (strcmp(name, "--retrieves") == 0) o.retrieves = number_arg(name, value, 100000000L);
    else if (strcmp(name, "--streams") == 0) o.streams = number_arg(name, value, 100000000L);
    else usage();
  }
  if (o.base_url == NULL || o.api_key == NULL || o.threads < 1) usage();

  if (pthread_barrier_init(&start, NULL, (unsigned)o.threads) != 0) {
    fprintf(stderr, "host: pthread_barrier_init failed\n");
    return 1;
  }
  started = now();
  for (t = 0; t < o.threads; t++) {
    memset(&jobs[t], 0, sizeof jobs[t]);
    jobs[t].opts = &o;
    jobs[t].start = &start;
    jobs[t].id = (int)t + 1;
    if (pthread_create(&tids[t], NULL, run, &jobs[t]) != 0) {
      fprintf(stderr, "host: pthread_create failed\n");
      return 1; /* the others wait at the barrier forever: exit at once */
    }
  }
  for (t = 0; t < o.threads; t++) pthread_join(tids[t], NULL);
  pthread_barrier_destroy(&start);

  for (t = 0; t < o.threads; t++) {
    const struct job *j = &jobs[t];
    printf("thread %d: retrieves=%ld/%ld streams=%ld/%ld failures=%ld seconds=%.2f%s%s\n", j->id,
           j->ok_retrieves, o.retrieves, j->ok_streams, o.streams, j->failures, j->seconds,
           j->error[0] ? " first error: " : "", j->error);
    total_r += j->ok_retrieves;
    total_s += j->ok_streams;
    failures += j->failures;
  }
  printf("total: threads=%ld retrieves=%ld/%ld streams=%ld/%ld failures=%ld seconds=%.2f\n", o.threads, total_r,
         o.threads * o.retrieves, total_s, o.threads * o.streams, failures, now() - started);
  fflush(stdout);
  return (failures == 0 && total_r == o.threads * o.retrieves && total_s == o.threads * o.streams) ? 0 : 1;
}
