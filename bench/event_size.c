/* How much memory one buffered message.publish event takes: the NIF's own record (erh_event_new,
 * the very function submit calls) for fields of the given lengths, measured as the heap chunk glibc
 * hands out for it (usable size plus the chunk header). The memory bench multiplies it by
 * buffer_events to get the bound the node must stay within while RabbitMQ is down.
 *
 *   event_size CLIENTID_BYTES USERNAME_BYTES TOPIC_BYTES PAYLOAD_BYTES
 *
 * Prints "bytes N". The message id is EMQX's 16 bytes written as 32 hex digits, as submit does. */

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "erh_event.h"

#define MSG_ID_HEX 32

int main(int argc, char **argv)
{
    static const erh_field fields[] = {ERH_F_CLIENTID, ERH_F_USERNAME, ERH_F_TOPIC, ERH_F_PAYLOAD};
    if (argc != 5) {
        fprintf(stderr, "usage: %s CLIENTID_BYTES USERNAME_BYTES TOPIC_BYTES PAYLOAD_BYTES\n", argv[0]);
        return 2;
    }
    size_t longest = MSG_ID_HEX, lengths[4];
    for (int i = 0; i < 4; i++) {
        lengths[i] = strtoul(argv[i + 1], NULL, 10);
        longest = lengths[i] > longest ? lengths[i] : longest;
    }
    char *filler = malloc(longest);
    if (!filler)
        return 1;
    memset(filler, 'x', longest);

    erh_event proto = {.type = ERH_EV_PUBLISH};
    for (int i = 0; i < 4; i++)
        proto.field[fields[i]] = (erh_bytes){filler, lengths[i]};
    proto.field[ERH_F_MSG_ID] = (erh_bytes){filler, MSG_ID_HEX};
    erh_event *event = erh_event_new(&proto);
    if (!event)
        return 1;
    printf("bytes %zu\n", malloc_usable_size(event) + sizeof(size_t));
    erh_event_free(event);
    free(filler);
    return 0;
}
