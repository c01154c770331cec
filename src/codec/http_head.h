/* HTTP/1.x response heads: the one place that knows the rules of a header
 * block. Two readers share them:
 *
 * - the libcurl transport reads the block libcurl collected (already
 *   checked by libcurl) leniently: status lines and lines without a name
 *   are skipped;
 * - core.http_head checks a head read off a socket strictly first, since
 *   those bytes come straight from the peer.
 *
 * Either way a header's name is the bytes before the first ':', its value
 * the rest without the blanks (SP, HTAB) around it; as Lua values the names
 * are lower-cased and a repeated header's values joined with ", ". All work
 * is linear in the block's length. */
#ifndef OPENAI_HTTP_HEAD_H
#define OPENAI_HTTP_HEAD_H

#include <stddef.h>

#include "compat.h"

/* One header line, pointing into the block. */
struct http_header {
  const char *name, *value;
  size_t name_len, value_len;
};

/* A position among the lines of a block. */
struct http_head_cursor {
  const char *pos, *end;
  int skip_status_lines; /* libcurl's block: lines starting "HTTP/" are status lines */
};

/* Whether c may appear in a token (an HTTP method, a header name). */
int http_token_char(unsigned char c);

/* A cursor over a header block as libcurl collects it. */
void http_head_lenient(struct http_head_cursor *c, const char *block, size_t len);

/* Reads the next header line; 0 at the end of the block. */
int http_head_next(struct http_head_cursor *c, struct http_header *h);

/* Checks one complete response head: a status line (HTTP/1.0 or 1.1, three
 * digits, an optional reason), header lines, each line ending in CRLF or
 * LF, then optionally the blank line and nothing after it. Returns 1 with
 * the status and a cursor over its header lines; or 0 with a short
 * one-line reason in err (NUL-terminated; it quotes no input). No Lua. */
int http_head_parse(const char *block, size_t len, int *status, struct http_head_cursor *headers,
                    char *err, size_t errsize);

/* Pushes a table of the cursor's headers: lower-case names, repeated
 * headers joined with ", ". The block must stay where it is meanwhile,
 * whatever Lua code runs: a Lua string on the stack, or C memory that no
 * Lua code can reach (rule 4 of curl/transfer.h). */
void http_head_push_headers(lua_State *L, struct http_head_cursor *c);

/* Pushes the value of one header (all its lines joined with ", "), or nil.
 * lower_name is lower-case. The same conditions on the block. */
void http_head_push_value(lua_State *L, struct http_head_cursor *c, const char *lower_name);

/* Lua: http_head(block) -> status, headers | nil, message */
int openai_http_head_lua(lua_State *L);
/* Lua: http_token(text) -> boolean */
int openai_http_token_lua(lua_State *L);

#endif
