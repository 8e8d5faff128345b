#include "erh_int_text.h"

#include <string.h>

/* Two digits per division, from the last: no snprintf, its locale and its format parsing. */
char *erh_int_text(int64_t value, char *end)
{
    static const char pairs[] = "0001020304050607080910111213141516171819"
                                "2021222324252627282930313233343536373839"
                                "4041424344454647484950515253545556575859"
                                "6061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";
    char *at = end;
    uint64_t magnitude = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
    for (; magnitude >= 100; magnitude /= 100)
        memcpy(at -= 2, pairs + magnitude % 100 * 2, 2);
    if (magnitude >= 10)
        memcpy(at -= 2, pairs + magnitude * 2, 2);
    else
        *--at = (char)('0' + magnitude);
    if (value < 0)
        *--at = '-';
    return at;
}
