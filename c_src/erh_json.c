#include "erh_json.h"

#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "erh_base64.h"
#include "erh_utf8.h"

/* The object being built. Helpers do nothing once a step failed, so the encoders read as the
 * list of fields in DESIGN §4, in order, and check the status once at the end. */
typedef struct builder {
    json_t *object;
    erh_buf *scratch; /* sanitized text and base64; the caller's output buffer, not yet written */
    erh_status status;
} builder;

/* Add value under key, taking the reference; a NULL value means jansson ran out of memory. */
static void put(builder *b, const char *key, json_t *value)
{
    /* Keys are our own ASCII literals: skip jansson's UTF-8 check of them. */
    if (!value || json_object_set_new_nocheck(b->object, key, value) != 0)
        b->status = ERH_ERR_NOMEM;
}

/* jansson copies every string it is given, so the scratch buffer is free again after each use. */
static json_t *scratch_string(builder *b)
{
    return json_stringn_nocheck(b->scratch->data ? b->scratch->data : "", b->scratch->len);
}

static void put_text(builder *b, const char *key, erh_bytes text)
{
    if (b->status != ERH_OK)
        return;
    if (!text.data) {
        put(b, key, json_null());
    } else if (erh_utf8_valid(text.data, text.len)) {
        put(b, key, json_stringn_nocheck(text.data, text.len));
    } else {
        b->scratch->len = 0;
        b->status = erh_utf8_sanitize(text.data, text.len, b->scratch);
        if (b->status == ERH_OK)
            put(b, key, scratch_string(b));
    }
}

static void put_int(builder *b, const char *key, int64_t value)
{
    if (b->status == ERH_OK)
        put(b, key, json_integer(value));
}

static void put_bool(builder *b, const char *key, bool value)
{
    if (b->status == ERH_OK)
        put(b, key, json_boolean(value));
}

static void put_payload(builder *b, erh_bytes payload, bool force_base64)
{
    bool plain = !payload.data || (!force_base64 && erh_utf8_valid(payload.data, payload.len));
    if (plain) {
        put_text(b, "payload", payload);
    } else if (b->status == ERH_OK) {
        b->scratch->len = 0;
        b->status = erh_base64_encode(payload.data, payload.len, b->scratch);
        if (b->status == ERH_OK)
            put(b, "payload", scratch_string(b));
    }
    if (b->status == ERH_OK)
        put(b, "payload_encoding", json_string_nocheck(plain ? "plain" : "base64"));
}

/* A payload above max_payload_bytes was never copied: say so and how large it was, rather than
 * send a cut one. */
static void put_omitted_payload(builder *b, uint64_t size)
{
    if (b->status != ERH_OK)
        return;
    put(b, "payload", json_null());
    put_bool(b, "payload_omitted", true);
    put_int(b, "payload_size", size <= INT64_MAX ? (int64_t)size : INT64_MAX);
}

static void put_connected(builder *b, const erh_event *event)
{
    put_text(b, "clientid", event->field[ERH_F_CLIENTID]);
    put_text(b, "username", event->field[ERH_F_USERNAME]);
    put_text(b, "ipaddress", event->field[ERH_F_IPADDRESS]);
    put_int(b, "peerport", event->peerport);
    put_int(b, "keepalive", event->keepalive);
    put_text(b, "proto_name", event->field[ERH_F_PROTO_NAME]);
    put_int(b, "proto_ver", event->proto_ver);
    put_bool(b, "clean_start", event->clean_start);
    put_int(b, "connected_at", event->connected_at);
    put_text(b, "conn_id", event->field[ERH_F_CONN_ID]);
}

static void put_disconnected(builder *b, const erh_event *event)
{
    put_text(b, "clientid", event->field[ERH_F_CLIENTID]);
    put_text(b, "username", event->field[ERH_F_USERNAME]);
    put_text(b, "ipaddress", event->field[ERH_F_IPADDRESS]);
    put_text(b, "reason", event->field[ERH_F_REASON]);
    put_int(b, "connected_at", event->connected_at);
    put_int(b, "disconnected_at", event->disconnected_at);
    put_text(b, "conn_id", event->field[ERH_F_CONN_ID]);
}

static void put_publish(builder *b, const erh_event *event, bool force_base64)
{
    put_text(b, "id", event->field[ERH_F_MSG_ID]);
    put_text(b, "from_client_id", event->field[ERH_F_CLIENTID]);
    put_text(b, "from_username", event->field[ERH_F_USERNAME]);
    put_text(b, "topic", event->field[ERH_F_TOPIC]);
    put_int(b, "qos", event->qos);
    put_bool(b, "retain", event->retain);
    if (event->payload_omitted)
        put_omitted_payload(b, event->payload_size);
    else
        put_payload(b, event->field[ERH_F_PAYLOAD], force_base64);
    put_int(b, "ts", event->timestamp);
}

/* Dump into out, growing it once when jansson reports the object needs more room. */
static erh_status dump(const json_t *object, erh_buf *out)
{
    /* Keys go in the order of DESIGN §4; jansson before 2.8 keeps insertion order only when asked. */
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    size_t size = json_dumpb(object, out->data, out->cap, flags);
    if (size > out->cap) {
        erh_status st = erh_buf_reserve(out, size);
        if (st != ERH_OK)
            return st;
        size = json_dumpb(object, out->data, out->cap, flags);
    }
    if (size == 0)
        return ERH_ERR_ENCODE;
    out->len = size;
    return ERH_OK;
}

erh_status erh_json_encode(const erh_event *event, const erh_json_options *options, erh_buf *out)
{
    out->len = 0;
    builder b = {json_object(), out, ERH_OK};
    if (!b.object)
        return ERH_ERR_NOMEM;

    put(&b, "action", json_string_nocheck(erh_event_action(event->type)));
    put_text(&b, "node", (erh_bytes){options->node, options->node ? strlen(options->node) : 0});
    switch (event->type) {
    case ERH_EV_CONNECTED:
        put_connected(&b, event);
        break;
    case ERH_EV_DISCONNECTED:
        put_disconnected(&b, event);
        break;
    case ERH_EV_PUBLISH:
        put_publish(&b, event, options->force_base64);
        break;
    default:
        b.status = ERH_ERR_BADARG;
        break;
    }
    /* seq stays below 2^63: one event per nanosecond would take 292 years to get there. */
    put_int(&b, "seq", (int64_t)event->seq);

    erh_status st = b.status == ERH_OK ? dump(b.object, out) : b.status;
    json_decref(b.object);
    if (st != ERH_OK)
        out->len = 0;
    return st;
}
