/* JSON <-> Lua values, on yajl. The rules are the ones in DESIGN.md:
 * int64 exact, floats stay floats, JSON null is openai.null, arrays carry
 * the registry metatable OPENAI_ARRAY_MT. */
#ifndef OPENAI_JSON_H
#define OPENAI_JSON_H

#include <stddef.h>
#include "compat.h"

#define OPENAI_JSON_MAX_DEPTH 1000

/* Decodes text[0..len) and pushes the value. Returns 1 on success.
 * On invalid input returns 0, pushes nothing and writes a one-line reason
 * into err (always NUL-terminated). Only stack-space or memory errors before
 * parsing starts can raise; no Lua error ever crosses yajl's frames. */
int openai_json_decode(lua_State *L, const char *text, size_t len,
                       int max_depth, char *err, size_t errsize);

/* Lua: json_decode(text [, max_depth]) -> value | nil, message */
int openai_json_decode_lua(lua_State *L);

/* Lua: json_encode(value) -> string; raises on values JSON cannot hold. */
int openai_json_encode_lua(lua_State *L);

/* Creates the metatables the codec needs (called once from luaopen). */
void openai_json_open(lua_State *L);

#endif
