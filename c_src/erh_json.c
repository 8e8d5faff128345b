#include "erh_json.h"

#include <stdint.h>
#include <string.h>

#include "erh_base64.h"
#include "erh_int_text.h"
#include "erh_utf8.h"

/* The object is written straight into out, field after field. Helpers do nothing once a step
 * failed, so the encoders read as the list of fields in DESIGN §4, in order, and check the status
 * once at the end. */
typedef struct writer {
    erh_buf *out;
    erh_buf *scratch; /* a text field made UTF-8, before it is escaped into out */
    erh_status status;
} writer;

#define LITERAL(text) text, sizeof text - 1

/* What follows the backslash for each byte a JSON string cannot hold as is (RFC 8259 §7); 'u' is
 * \u00XX, 0 a byte copied as is. '/' and bytes from 0x7f up need no escape. */
static const char escapes[256] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    ['"'] = '"', ['\\'] = '\\',
};

/* Make room for n more bytes in out. */
static bool room(writer *w, size_t n)
{
    if (w->status != ERH_OK)
        return false;
    if (w->out->cap - w->out->len >= n)
        return true;
    if (n > SIZE_MAX - w->out->len)
        w->status = ERH_ERR_NOMEM;
    else
        w->status = erh_buf_reserve(w->out, w->out->len + n);
    return w->status == ERH_OK;
}

static void append(writer *w, const char *data, size_t len)
{
    if (!room(w, len))
        return;
    memcpy(w->out->data + w->out->len, data, len);
    w->out->len += len;
}

/* True when none of the 8 bytes at s needs an escape: none below 0x20, no '"', no '\\'.
 * (x - n..) & ~x & 0x80.. is not 0 exactly when some byte of x is below n (n <= 0x80), and x ^ c..
 * has a 0 byte where x holds c; bytes from 0x80 up, never escaped, are masked out by ~word. */
static bool plain8(const unsigned char *s)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t word;
    memcpy(&word, s, sizeof word);
    uint64_t quote = word ^ ones * '"', backslash = word ^ ones * '\\';
    return !(((word - ones * 0x20) | (quote - ones) | (backslash - ones)) & ~word & highs);
}

/* Length of the prefix of s that is copied as is. */
static size_t plain_prefix(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (len - i >= 8 && plain8(s + i))
        i += 8;
    while (i < len && !escapes[s[i]])
        i++;
    return i;
}

static void append_escape(writer *w, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF"; /* jansson's upper case, so the bytes do not change */
    char escape = escapes[c];
    if (escape == 'u')
        append(w, (const char[]){'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]}, 6);
    else
        append(w, (const char[]){'\\', escape}, 2);
}

/* text, which is UTF-8, as a JSON string: runs that need no escape are copied in one go. */
static void append_string(writer *w, const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    append(w, LITERAL("\""));
    for (size_t i = 0; i < len && w->status == ERH_OK;) {
        size_t run = plain_prefix(s + i, len - i);
        append(w, text + i, run);
        i += run;
        if (i < len)
            append_escape(w, s[i++]);
    }
    append(w, LITERAL("\""));
}

/* ,"key": — every key but the first, which opens the object. */
static void put_key(writer *w, const char *key)
{
    size_t len = strlen(key);
    if (!room(w, len + 4))
        return;
    char *at = w->out->data + w->out->len;
    at[0] = ',';
    at[1] = '"';
    memcpy(at + 2, key, len);
    at[len + 2] = '"';
    at[len + 3] = ':';
    w->out->len += len + 4;
}

/* text as a string, null when absent; sanitized first when it is not UTF-8. */
static void append_text(writer *w, erh_bytes text)
{
    if (w->status != ERH_OK)
        return;
    if (!text.data) {
        append(w, LITERAL("null"));
    } else if (erh_utf8_valid(text.data, text.len)) {
        append_string(w, text.data, text.len);
    } else {
        w->scratch->len = 0;
        w->status = erh_utf8_sanitize(text.data, text.len, w->scratch);
        if (w->status == ERH_OK)
            append_string(w, w->scratch->data, w->scratch->len);
    }
}

static void put_text(writer *w, const char *key, erh_bytes text)
{
    put_key(w, key);
    append_text(w, text);
}

static void put_int(writer *w, const char *key, int64_t value)
{
    char text[ERH_INT_TEXT_MAX];
    char *at = erh_int_text(value, text + sizeof text);
    put_key(w, key);
    append(w, at, (size_t)(text + sizeof text - at));
}

static void put_bool(writer *w, const char *key, bool value)
{
    put_key(w, key);
    if (value)
        append(w, LITERAL("true"));
    else
        append(w, LITERAL("false"));
}

/* Base64 needs no escape: it goes straight into out, between the quotes. */
static void append_base64(writer *w, erh_bytes payload)
{
    append(w, LITERAL("\""));
    if (w->status == ERH_OK)
        w->status = erh_base64_encode(payload.data, payload.len, w->out);
    append(w, LITERAL("\""));
}

static void put_payload(writer *w, erh_bytes payload, bool force_base64)
{
    bool plain = !payload.data || (!force_base64 && erh_utf8_valid(payload.data, payload.len));
    put_key(w, "payload");
    if (plain)
        append_text(w, payload);
    else
        append_base64(w, payload);
    put_key(w, "payload_encoding");
    if (plain)
        append(w, LITERAL("\"plain\""));
    else
        append(w, LITERAL("\"base64\""));
}

/* A payload above max_payload_bytes was never copied: say so and how large it was, rather than
 * send a cut one. */
static void put_omitted_payload(writer *w, uint64_t size)
{
    put_key(w, "payload");
    append(w, LITERAL("null"));
    put_bool(w, "payload_omitted", true);
    put_int(w, "payload_size", size <= INT64_MAX ? (int64_t)size : INT64_MAX);
}

static void put_connected(writer *w, const erh_event *event)
{
    put_text(w, "clientid", event->field[ERH_F_CLIENTID]);
    put_text(w, "username", event->field[ERH_F_USERNAME]);
    put_text(w, "ipaddress", event->field[ERH_F_IPADDRESS]);
    put_int(w, "peerport", event->peerport);
    put_int(w, "keepalive", event->keepalive);
    put_text(w, "proto_name", event->field[ERH_F_PROTO_NAME]);
    if (event->field[ERH_F_PROTO_VER].data)
        put_text(w, "proto_ver", event->field[ERH_F_PROTO_VER]);
    else
        put_int(w, "proto_ver", event->proto_ver);
    put_bool(w, "clean_start", event->clean_start);
    put_int(w, "connected_at", event->connected_at);
    put_text(w, "conn_id", event->field[ERH_F_CONN_ID]);
}

static void put_disconnected(writer *w, const erh_event *event)
{
    put_text(w, "clientid", event->field[ERH_F_CLIENTID]);
    put_text(w, "username", event->field[ERH_F_USERNAME]);
    put_text(w, "ipaddress", event->field[ERH_F_IPADDRESS]);
    put_text(w, "reason", event->field[ERH_F_REASON]);
    put_int(w, "connected_at", event->connected_at);
    put_int(w, "disconnected_at", event->disconnected_at);
    put_text(w, "conn_id", event->field[ERH_F_CONN_ID]);
}

static void put_publish(writer *w, const erh_event *event, bool force_base64)
{
    put_text(w, "id", event->field[ERH_F_MSG_ID]);
    put_text(w, "from_client_id", event->field[ERH_F_CLIENTID]);
    put_text(w, "from_username", event->field[ERH_F_USERNAME]);
    put_text(w, "topic", event->field[ERH_F_TOPIC]);
    put_int(w, "qos", event->qos);
    put_bool(w, "retain", event->retain);
    if (event->payload_omitted)
        put_omitted_payload(w, event->payload_size);
    else
        put_payload(w, event->field[ERH_F_PAYLOAD], force_base64);
    put_int(w, "ts", event->timestamp);
}

static erh_bytes c_string(const char *text)
{
    return (erh_bytes){text, text ? strlen(text) : 0};
}

erh_status erh_json_encode(const erh_event *event, const erh_json_options *options, erh_buf *out)
{
    erh_buf own_scratch = {0};
    writer w = {out, options->scratch ? options->scratch : &own_scratch, ERH_OK};
    out->len = 0;

    append(&w, LITERAL("{\"action\":"));
    append_text(&w, c_string(erh_event_action(event->type)));
    put_text(&w, "node", c_string(options->node));
    switch (event->type) {
    case ERH_EV_CONNECTED:
        put_connected(&w, event);
        break;
    case ERH_EV_DISCONNECTED:
        put_disconnected(&w, event);
        break;
    case ERH_EV_PUBLISH:
        put_publish(&w, event, options->force_base64);
        break;
    default:
        w.status = ERH_ERR_BADARG;
        break;
    }
    /* seq stays below 2^63: one event per nanosecond would take 292 years to get there. */
    put_int(&w, "seq", (int64_t)event->seq);
    append(&w, LITERAL("}"));

    erh_buf_free(&own_scratch);
    if (w.status != ERH_OK)
        out->len = 0;
    return w.status;
}
