/* How much memory one buffered message.publish event takes: the NIF's own record for fields of the
 * given lengths, cut from an arena by erh_event_new_in, the very function submit calls, measured as
 * the distance between two such records cut one after the other. The memory bench multiplies it by
 * buffer_events to get the bound the node must stay within while RabbitMQ is down.
 *
 *   event_size CLIENTID_BYTES USERNAME_BYTES TOPIC_BYTES PAYLOAD_BYTES
 *
 * Prints "bytes N". The message id is EMQX's 16 bytes written as 32 hex digits, as submit does. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    /* Until the arena's thread has a chunk ready, records come from malloc: wait for two in one. */
    erh_arena arena;
    if (erh_arena_init(&arena, 1) != ERH_OK)
        return 1;
    erh_event *first = NULL, *second = NULL;
    for (int tries = 0; tries < 10000 && !(first && second && first->chunk && first->chunk == second->chunk); tries++) {
        erh_event_free(first);
        first = second;
        second = erh_event_new_in(&arena, 0, &proto);
        if (!second)
            return 1;
        nanosleep(&(struct timespec){0, 100000}, NULL);
    }
    if (!first || !first->chunk || first->chunk != second->chunk)
        return 1;
    printf("bytes %td\n", (char *)second - (char *)first);
    erh_event_free(first);
    erh_event_free(second);
    erh_arena_destroy(&arena);
    free(filler);
    return 0;
}
