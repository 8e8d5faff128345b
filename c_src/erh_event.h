/* One EMQX event as plain C data: what the glue copies out of Erlang terms and the workers read. */
#ifndef ERH_EVENT_H
#define ERH_EVENT_H

#include <stdbool.h>
#include <stdint.h>

#include "erh_arena.h"
#include "erh_buf.h"

typedef enum erh_event_type {
    ERH_EV_CONNECTED = 0,
    ERH_EV_DISCONNECTED = 1,
    ERH_EV_PUBLISH = 2,
    ERH_EV__COUNT
} erh_event_type;

/* The byte-string fields of an event; which ones a type uses is listed in DESIGN §4. */
typedef enum erh_field {
    ERH_F_CLIENTID,   /* connected/disconnected: clientid; publish: from_client_id */
    ERH_F_USERNAME,   /* data == NULL when EMQX had no username */
    ERH_F_IPADDRESS,  /* connected/disconnected */
    ERH_F_PROTO_NAME, /* connected */
    ERH_F_REASON,     /* disconnected */
    ERH_F_CONN_ID,    /* connected/disconnected */
    ERH_F_MSG_ID,     /* publish: EMQX message id as lower-case hex */
    ERH_F_TOPIC,      /* publish */
    ERH_F_PAYLOAD,    /* publish: raw bytes, may be any binary */
    ERH_F_PROTO_VER,  /* connected: proto_ver when EMQX gives text (gateways: MQTT-SN "1.2"); else absent */
    ERH_F__COUNT
} erh_field;

typedef struct erh_event {
    struct erh_event *next; /* link in whichever queue holds the event */
    erh_arena_chunk *chunk; /* where its memory comes from; NULL: malloc */
    erh_event_type type;
    uint64_t seq;           /* per-instance sequence number, stamped on submit */
    uint64_t boot_id;       /* the instance that accepted it: with seq and the node, its message_id */

    /* Delivery state, owned by the publisher thread. */
    uint64_t delivery_tag;  /* AMQP tag while in flight, 0 otherwise */
    uint64_t spool_segment; /* where the spool holds a copy, when in_spool */
    uint64_t spool_offset;
    bool in_spool;          /* a copy is in the spool until the event is confirmed */
    bool returned;          /* RabbitMQ returned it as unroutable: its ack does not end its delivery */
    bool dead_letter;       /* goes to the unroutable queue instead of the exchange */

    erh_bytes field[ERH_F__COUNT];
    int64_t connected_at;    /* ms */
    int64_t disconnected_at; /* ms */
    int64_t timestamp;       /* ms: publish time, or the event time for client events */
    int32_t peerport;
    int32_t keepalive;
    int32_t proto_ver;
    int32_t qos;
    bool clean_start;
    bool retain;
    /* publish: a payload larger than max_payload_bytes is not copied; the field stays absent and
     * the JSON says how large it was. */
    bool payload_omitted;
    uint64_t payload_size;
    char storage[]; /* the bytes of every field, copied in one allocation */
} erh_event;

/* A new event with proto's values and copies of the bytes its fields borrow (absent fields stay
 * absent), all in one allocation; NULL when out of memory. */
erh_event *erh_event_new(const erh_event *proto);
/* The same, in memory from arena's lane: for events made on the VM's schedulers. */
erh_event *erh_event_new_in(erh_arena *arena, unsigned lane, const erh_event *proto);
void erh_event_free(erh_event *event);
/* Free a NULL-terminated list linked by next; returns how many events it held. */
size_t erh_event_list_free(erh_event *head);

/* Append the event's content (not its delivery state, but dead_letter) to out in a portable binary
 * form, for the spool. */
erh_status erh_event_pack(const erh_event *event, erh_buf *out);
/* The event packed in data[0..len), as a new event; ERH_ERR_BADARG when the bytes are not one. */
erh_status erh_event_unpack(const char *data, size_t len, erh_event **out);

/* Which of publishers carries a client's events: always the same one for the same count, so that
 * a client's events leave in order (FNV-1a of the client id). */
unsigned erh_event_publisher_of(erh_bytes clientid, unsigned publishers);

/* The event name used in the AMQP "type" property and default routing key, e.g. "client.connected". */
const char *erh_event_name(erh_event_type type);
/* The JSON "action", e.g. "client_connected". */
const char *erh_event_action(erh_event_type type);

#endif
