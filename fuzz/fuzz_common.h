/* Shared bits of the libFuzzer targets in fuzz/ (built by tools/fuzz.sh).
 * Every target keeps one lua_State per process and resets its stack after
 * each input. A broken property is reported with fuzz_fail(), which prints
 * the reason and aborts, so libFuzzer saves the input as a crash. */
#ifndef OPENAI_FUZZ_COMMON_H
#define OPENAI_FUZZ_COMMON_H

/* Include this first: strnlen and friends. */
#define _POSIX_C_SOURCE 200809L

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "int64.h"
#include "codec/json.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#if defined(__GNUC__)
__attribute__((noreturn))
#endif
static inline void fuzz_fail(const char *what, const char *detail) {
  fprintf(stderr, "\nfuzz property broken: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  fflush(stderr);
  abort();
}

/* A fresh lua_State with the standard libraries: one per fuzzing process. */
static inline lua_State *fuzz_lua_state(void) {
  lua_State *S = luaL_newstate();
  if (S == NULL) fuzz_fail("luaL_newstate", NULL);
  luaL_openlibs(S);
  return S;
}

/* The same with the JSON codec's metatables. */
static inline lua_State *fuzz_json_state(void) {
  lua_State *S = fuzz_lua_state();
  openai_json_open(S);
  openai_int64_open(S);
  return S;
}

/* A reader over the input for targets that build structured values. */
struct fuzz_reader {
  const uint8_t *p;
  size_t left;
};

static inline unsigned fuzz_byte(struct fuzz_reader *r) {
  if (r->left == 0) return 0;
  r->left--;
  return *r->p++;
}

/* Up to n bytes of the input (fewer at its end). */
static inline const char *fuzz_bytes(struct fuzz_reader *r, size_t n, size_t *got) {
  const char *s = (const char *)r->p;
  if (n > r->left) n = r->left;
  r->p += n;
  r->left -= n;
  *got = n;
  return s;
}

#endif
