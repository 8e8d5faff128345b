/* Decimal text of integers, for the JSON writer and the hook's connection ids. */
#ifndef ERH_INT_TEXT_H
#define ERH_INT_TEXT_H

#include <stdint.h>

/* The longest text: "-9223372036854775808". */
#define ERH_INT_TEXT_MAX 20

/* Writes the digits of value (with '-' when negative) so that they end just before end, and
 * returns where they start: at least end - ERH_INT_TEXT_MAX. No terminating NUL. */
char *erh_int_text(int64_t value, char *end);

#endif
