/* Exact 64-bit integers where Lua numbers are only doubles (Lua 5.1, 5.2,
 * LuaJIT), so that a JSON integer beyond 2^53 (a seed, an id) survives a
 * decode and an encode digit for digit.
 *
 * Such an integer decodes to a box. On LuaJIT the Lua layer hands in, at
 * load time, a function making an int64_t (uint64_t above INT64_MAX) cdata,
 * which C cannot make through the Lua API, and one telling the digits of
 * such a cdata; elsewhere, or before that, the box is a userdata with the
 * metatable OPENAI_INT64_MT: exact digits from tostring, ==, <, <= among
 * boxes and (5.2) with numbers, and .. with strings. The range is
 * -2^63 .. 2^64-1; integers outside it are floats, as on 5.3 and 5.4. */
#ifndef OPENAI_INT64_H
#define OPENAI_INT64_H

#include <stdint.h>
#include "compat.h"

/* Integers up to this magnitude are plain numbers: doubles hold them all. */
#define INT64_EXACT_DOUBLE ((uint64_t)1 << 53)

/* Creates the metatable (called once from luaopen). */
void openai_int64_open(lua_State *L);

/* Pushes the box of -magnitude or magnitude, which is beyond
 * INT64_EXACT_DOUBLE: -2^63 at most when negative. May run Lua code (the
 * cdata maker, any finalizer) and raise. */
void openai_int64_push(lua_State *L, int negative, uint64_t magnitude);

/* Whether the value at idx is a box (either kind); if so, its sign and
 * magnitude. May run Lua code (the cdata digits function) and raise. */
int openai_int64_get(lua_State *L, int idx, int *negative, uint64_t *magnitude);

/* Lua: int64_functions(make, digits): make(negative, high, low) returns the
 * cdata of the integer whose magnitude is high * 2^32 + low; digits(v)
 * returns the decimal text of an int64_t or uint64_t cdata, else nil. */
int openai_int64_functions_lua(lua_State *L);

#endif
