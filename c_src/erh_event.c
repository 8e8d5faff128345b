#include "erh_event.h"

#include <stdlib.h>
#include <string.h>

/* Packed form, little-endian: version, type, flags, field count, six 64-bit and four 32-bit
 * numbers, then each field as a 32-bit length (ABSENT for none) and its bytes. A reader takes
 * fewer fields than it knows (the rest absent), so new fields go at the end of erh_field. */
#define PACK_VERSION 1
#define ABSENT UINT32_MAX
#define FLAG_CLEAN_START 1
#define FLAG_RETAIN 2
#define FLAG_DEAD_LETTER 4
#define FLAG_PAYLOAD_OMITTED 8

/* The bytes an event with proto's fields takes, or 0 when that does not fit in a size_t. */
static size_t event_bytes(const erh_event *proto)
{
    size_t total = sizeof(erh_event);
    for (int i = 0; i < ERH_F__COUNT; i++) {
        if (proto->field[i].len > SIZE_MAX - total - 1)
            return 0;
        total += proto->field[i].len + 1; /* keep a NUL after each field for C-string consumers */
    }
    return total;
}

/* Build the event in memory of event_bytes(proto) bytes. */
static erh_event *event_build(void *memory, erh_arena_chunk *chunk, const erh_event *proto)
{
    erh_event *event = memory;
    *event = *proto;
    event->next = NULL;
    event->chunk = chunk;
    char *at = event->storage;
    for (int i = 0; i < ERH_F__COUNT; i++) {
        const erh_bytes *field = &proto->field[i];
        if (!field->data) {
            event->field[i] = (erh_bytes){0};
            continue;
        }
        if (field->len)
            memcpy(at, field->data, field->len);
        at[field->len] = '\0';
        event->field[i] = (erh_bytes){.data = at, .len = field->len};
        at += field->len + 1;
    }
    return event;
}

erh_event *erh_event_new(const erh_event *proto)
{
    size_t bytes = event_bytes(proto);
    void *memory = bytes ? malloc(bytes) : NULL;
    return memory ? event_build(memory, NULL, proto) : NULL;
}

erh_event *erh_event_new_in(erh_arena *arena, unsigned lane, const erh_event *proto)
{
    size_t bytes = event_bytes(proto);
    erh_arena_chunk *chunk = NULL;
    void *memory = bytes ? erh_arena_alloc(arena, lane, bytes, &chunk) : NULL;
    return memory ? event_build(memory, chunk, proto) : NULL;
}

void erh_event_free(erh_event *event)
{
    if (event && event->chunk)
        erh_arena_release(event->chunk);
    else
        free(event);
}

size_t erh_event_list_free(erh_event *head)
{
    size_t n = 0;
    while (head) {
        erh_event *next = head->next;
        erh_event_free(head);
        head = next;
        n++;
    }
    return n;
}

unsigned erh_event_publisher_of(erh_bytes clientid, unsigned publishers)
{
    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < clientid.len; i++)
        hash = (hash ^ (unsigned char)clientid.data[i]) * 16777619u;
    return hash % publishers;
}

const char *erh_event_name(erh_event_type type)
{
    switch (type) {
    case ERH_EV_CONNECTED:
        return "client.connected";
    case ERH_EV_DISCONNECTED:
        return "client.disconnected";
    case ERH_EV_PUBLISH:
        return "message.publish";
    default:
        return "unknown";
    }
}

const char *erh_event_action(erh_event_type type)
{
    switch (type) {
    case ERH_EV_CONNECTED:
        return "client_connected";
    case ERH_EV_DISCONNECTED:
        return "client_disconnected";
    case ERH_EV_PUBLISH:
        return "message_publish";
    default:
        return "unknown";
    }
}

static void put_le(unsigned char *at, uint64_t value, int bytes)
{
    for (int i = 0; i < bytes; i++)
        at[i] = (unsigned char)(value >> (8 * i));
}

static uint64_t get_le(const unsigned char *at, int bytes)
{
    uint64_t value = 0;
    for (int i = 0; i < bytes; i++)
        value |= (uint64_t)at[i] << (8 * i);
    return value;
}

#define WIDE 6
#define HEADER_BYTES (4 + WIDE * 8 + 4 * 4)

erh_status erh_event_pack(const erh_event *event, erh_buf *out)
{
    unsigned char header[HEADER_BYTES];
    unsigned char *at = header;
    at[0] = PACK_VERSION;
    at[1] = (unsigned char)event->type;
    at[2] = (unsigned char)((event->clean_start ? FLAG_CLEAN_START : 0) | (event->retain ? FLAG_RETAIN : 0) |
                            (event->dead_letter ? FLAG_DEAD_LETTER : 0) |
                            (event->payload_omitted ? FLAG_PAYLOAD_OMITTED : 0));
    at[3] = ERH_F__COUNT;
    at += 4;
    const uint64_t wide[WIDE] = {event->seq,          event->boot_id,
                                 (uint64_t)event->connected_at, (uint64_t)event->disconnected_at,
                                 (uint64_t)event->timestamp,    event->payload_size};
    for (int i = 0; i < WIDE; i++, at += 8)
        put_le(at, wide[i], 8);
    const int32_t narrow[4] = {event->peerport, event->keepalive, event->proto_ver, event->qos};
    for (int i = 0; i < 4; i++, at += 4)
        put_le(at, (uint32_t)narrow[i], 4);
    erh_status st = erh_buf_append(out, (const char *)header, sizeof header);
    for (int f = 0; st == ERH_OK && f < ERH_F__COUNT; f++) {
        const erh_bytes *field = &event->field[f];
        if (field->data && field->len >= ABSENT)
            return ERH_ERR_TOO_LONG;
        unsigned char len[4];
        put_le(len, field->data ? field->len : ABSENT, 4);
        st = erh_buf_append(out, (const char *)len, sizeof len);
        if (st == ERH_OK && field->data)
            st = erh_buf_append(out, field->data, field->len);
    }
    return st;
}

erh_status erh_event_unpack(const char *data, size_t len, erh_event **out)
{
    const unsigned char *at = (const unsigned char *)data, *end = at + len;
    *out = NULL;
    if (len < HEADER_BYTES || at[0] != PACK_VERSION || at[1] >= ERH_EV__COUNT)
        return ERH_ERR_BADARG;
    erh_event proto = {.type = (erh_event_type)at[1],
                       .clean_start = at[2] & FLAG_CLEAN_START,
                       .retain = at[2] & FLAG_RETAIN,
                       .dead_letter = at[2] & FLAG_DEAD_LETTER,
                       .payload_omitted = at[2] & FLAG_PAYLOAD_OMITTED};
    int fields = at[3];
    at += 4;
    uint64_t wide[WIDE];
    for (int i = 0; i < WIDE; i++, at += 8)
        wide[i] = get_le(at, 8);
    int32_t narrow[4];
    for (int i = 0; i < 4; i++, at += 4)
        narrow[i] = (int32_t)(uint32_t)get_le(at, 4);
    proto.seq = wide[0];
    proto.boot_id = wide[1];
    proto.connected_at = (int64_t)wide[2];
    proto.disconnected_at = (int64_t)wide[3];
    proto.timestamp = (int64_t)wide[4];
    proto.payload_size = wide[5];
    proto.peerport = narrow[0];
    proto.keepalive = narrow[1];
    proto.proto_ver = narrow[2];
    proto.qos = narrow[3];
    for (int f = 0; f < fields; f++) {
        if (end - at < 4)
            return ERH_ERR_BADARG;
        uint64_t field_len = get_le(at, 4);
        at += 4;
        if (field_len == ABSENT)
            continue;
        if ((uint64_t)(end - at) < field_len)
            return ERH_ERR_BADARG;
        if (f < ERH_F__COUNT)
            proto.field[f] = (erh_bytes){(const char *)at, (size_t)field_len};
        at += field_len;
    }
    if (at != end)
        return ERH_ERR_BADARG;
    *out = erh_event_new(&proto);
    return *out ? ERH_OK : ERH_ERR_NOMEM;
}
