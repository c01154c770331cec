/* The encoder's float text, exposed for fuzz/json_roundtrip.c (defined in
 * json_encode.c; not exported from the module). */
#ifndef OPENAI_JSON_FLOAT_H
#define OPENAI_JSON_FLOAT_H

#include <stddef.h>

/* Room that both functions below may use in buf. */
#define OPENAI_FLOAT_TEXT 64

/* The text openai.json.encode writes for the finite double v (with '.' as
 * the decimal point); 0 when it cannot be formatted. *fast is set to 1 when
 * the exact arithmetic path wrote it, 0 when snprintf did. */
size_t openai_json_float_text(double v, char *buf, int *fast);

/* The same rule by snprintf and strtod alone, as the encoder used to
 * do it: the first of %.15g/%.16g/%.17g (from %.1g for a subnormal) that
 * reads back as v, ".0" added when it looks like an integer. The reference
 * the fast path is checked against. */
size_t openai_json_float_reference(double v, char *buf);

#endif
