/* What encoding one message.publish event as JSON costs a publisher thread: erh_json_encode, the
 * NIF's own encoder, run COUNT times on an event like the bench's (UTF-8 payload of PAYLOAD_BYTES).
 *
 *   json_cost PAYLOAD_BYTES COUNT
 *
 * Prints "ns N bytes B": nanoseconds per encode and the length of the JSON. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "erh_json.h"

#define LITERAL(text) ((erh_bytes){text, sizeof text - 1})

static double now_s(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s PAYLOAD_BYTES COUNT\n", argv[0]);
        return 2;
    }
    size_t payload_len = strtoul(argv[1], NULL, 10);
    long count = strtol(argv[2], NULL, 10);
    char *payload = malloc(payload_len + 1);
    if (!payload || count <= 0)
        return 1;
    memset(payload, '7', payload_len);

    erh_event event = {.type = ERH_EV_PUBLISH, .seq = 1, .qos = 1, .timestamp = 1700000000123};
    event.field[ERH_F_MSG_ID] = LITERAL("0000000000000000000000000000002a");
    event.field[ERH_F_CLIENTID] = LITERAL("bench-1");
    event.field[ERH_F_USERNAME] = LITERAL("fleet-a");
    event.field[ERH_F_TOPIC] = LITERAL("devices/bench-1/telemetry");
    event.field[ERH_F_PAYLOAD] = (erh_bytes){payload, payload_len};
    const erh_json_options options = {.node = "emqx@127.0.0.1"};
    erh_buf out = {0};

    double start = now_s();
    for (long i = 0; i < count; i++) {
        event.seq = (uint64_t)i + 1;
        if (erh_json_encode(&event, &options, &out) != ERH_OK)
            return 1;
    }
    double seconds = now_s() - start;
    printf("ns %.0f bytes %zu\n", seconds * 1e9 / (double)count, out.len);
    erh_buf_free(&out);
    free(payload);
    return 0;
}
