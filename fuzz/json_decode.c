/* libFuzzer target: bytes -> openai_json_decode.
 *
 * Properties: no crash, leak or undefined behaviour; on success exactly one
 * value is pushed and no message is written; on failure nothing is pushed
 * and the message is one non-empty NUL-terminated line that fits the
 * buffer, whatever its size. The depth limit and the message buffer size
 * vary with the input's length, so small limits and tiny buffers are
 * exercised too. */
#include "fuzz_common.h" /* first: feature macros */

#include <string.h>

#include "json.h"

static lua_State *L;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = fuzz_json_state();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[256];
  size_t errsize = sizeof err;
  int depth = OPENAI_JSON_MAX_DEPTH;
  int ok;

  if (size % 7 == 3) depth = 1 + (int)(size % 11);
  if (size % 5 == 1) errsize = 1 + size % 9;
  memset(err, 'x', sizeof err);
  lua_settop(L, 0);
  ok = openai_json_decode(L, (const char *)data, size, depth, err, errsize);
  if (ok) {
    if (lua_gettop(L) != 1) fuzz_fail("success must push exactly one value", NULL);
    if (err[0] != '\0') fuzz_fail("success must leave the message empty", err);
    if (lua_type(L, 1) == LUA_TNONE || lua_type(L, 1) == LUA_TNIL) fuzz_fail("decoded a nil", NULL);
  } else {
    size_t len = strnlen(err, errsize);
    if (lua_gettop(L) != 0) fuzz_fail("failure must push nothing", NULL);
    if (len >= errsize) fuzz_fail("message not NUL-terminated inside its buffer", NULL);
    if (errsize > 1 && len == 0) fuzz_fail("empty failure message", NULL);
    if (memchr(err, '\n', len) != NULL) fuzz_fail("message spans lines", err);
    if (errsize == sizeof err && strncmp(err, "invalid JSON", 12) != 0 && strncmp(err, "JSON nested too deeply", 22) != 0)
      fuzz_fail("unexpected kind of message", err);
  }
  lua_settop(L, 0);
  return 0;
}
