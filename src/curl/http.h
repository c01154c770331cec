/* The HTTP transport: one 'openai.Connection' userdata per client, owning a
 * libcurl easy handle driven through its own multi handle, so that blocking
 * requests and pulled streams share one code path and one connection cache. */
#ifndef OPENAI_HTTP_H
#define OPENAI_HTTP_H

#include "compat.h"

/* Registers the Connection, Stream, Pending and Loop metatables and puts
 * `connection`, `valid_proxy` and `loop` into the module table at the top
 * of the stack. */
void openai_http_open(lua_State *L);

/* Global libcurl initialisation, done once per process, thread-safely.
 * Returns 0 on failure. */
int openai_http_global_init(void);

#endif
