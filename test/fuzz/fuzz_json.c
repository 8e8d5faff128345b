/* The JSON body (erh_json.c) of any event: whatever bytes a device puts in its client id, user
 * name, topic or payload (invalid UTF-8, NUL bytes, anything), the output is one valid JSON object
 * that jansson decodes back to the event: text fields exactly when they are UTF-8 (else with
 * U+FFFD in place of each bad sequence), the payload exactly as text or base64, an omitted
 * payload as its size, and every number; and jansson, dumping what it decoded, prints the same
 * bytes back. erh_utf8_valid must also agree with jansson's own check.
 * Input: type, flags, seq, timestamp, connected_at, disconnected_at, 8 bytes for the small numbers,
 * then one field per erh_field in its order (clientid, username, ipaddress, proto_name, reason,
 * conn_id, msg_id, topic, payload, proto_ver as text; see fuzz.h); msg_id's bytes also serve as
 * the node name. */
#include <jansson.h>

#include "erh_event.h"
#include "erh_json.h"
#include "erh_utf8.h"
#include "fuzz.h"

enum {
    FORCE_BASE64 = 1,
    NO_USERNAME = 2,
    OMIT_PAYLOAD = 4,
    NO_NODE = 8,
    NO_CLIENTID = 16,
    NO_REASON = 32,
    FLAG = 64,            /* clean_start, retain */
    TEXT_PROTO_VER = 128, /* a gateway's proto_ver, as text */
};

static const char *const keys[ERH_EV__COUNT][ERH_F__COUNT] = {
    [ERH_EV_CONNECTED] = {[ERH_F_CLIENTID] = "clientid", [ERH_F_USERNAME] = "username",
                          [ERH_F_IPADDRESS] = "ipaddress", [ERH_F_PROTO_NAME] = "proto_name",
                          [ERH_F_CONN_ID] = "conn_id"},
    [ERH_EV_DISCONNECTED] = {[ERH_F_CLIENTID] = "clientid", [ERH_F_USERNAME] = "username",
                             [ERH_F_IPADDRESS] = "ipaddress", [ERH_F_REASON] = "reason", [ERH_F_CONN_ID] = "conn_id"},
    [ERH_EV_PUBLISH] = {[ERH_F_CLIENTID] = "from_client_id", [ERH_F_USERNAME] = "from_username",
                        [ERH_F_MSG_ID] = "id", [ERH_F_TOPIC] = "topic"},
};

/* Keys besides the text fields: action, node, seq, and per type the numbers, flags and payload
 * (payload and payload_encoding; an omitted payload has payload_omitted and payload_size instead). */
static const size_t other_keys[ERH_EV__COUNT] = {[ERH_EV_CONNECTED] = 8, [ERH_EV_DISCONNECTED] = 5,
                                                 [ERH_EV_PUBLISH] = 8};

/* jansson's UTF-8 check, to compare ours with. */
static bool jansson_accepts(erh_bytes text)
{
    json_t *string = json_stringn(text.data ? text.data : "", text.len);
    json_decref(string);
    return string != NULL;
}

static void check_text(const json_t *object, const char *key, erh_bytes sent)
{
    const json_t *value = json_object_get(object, key);
    if (!sent.data) {
        FUZZ_CHECK(json_is_null(value), "%s is not null", key);
        return;
    }
    FUZZ_CHECK(json_is_string(value), "%s is not a string", key);
    erh_bytes got = {json_string_value(value), json_string_length(value)};
    bool valid = erh_utf8_valid(sent.data, sent.len);
    FUZZ_CHECK(valid == jansson_accepts(sent), "%s: erh_utf8_valid says %d, jansson the opposite", key, valid);
    if (valid) {
        FUZZ_CHECK(fuzz_equal(got, sent.data, sent.len), "%s differs", key);
        return;
    }
    erh_buf sanitized = {0};
    FUZZ_CHECK(erh_utf8_sanitize(sent.data, sent.len, &sanitized) == ERH_OK, "sanitizing %s", key);
    FUZZ_CHECK(fuzz_equal(got, sanitized.data, sanitized.len), "%s is not the sanitized text", key);
    FUZZ_CHECK(got.len <= 3 * sent.len && memmem(got.data, got.len, "\xEF\xBF\xBD", 3), "%s: no U+FFFD", key);
    erh_buf_free(&sanitized);
}

static int base64_value(char c)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *at = c ? strchr(alphabet, c) : NULL;
    return at ? (int)(at - alphabet) : -1;
}

/* Decode padded base64 (RFC 4648 §4) strictly: true when text is exactly the encoding of raw. */
static bool base64_is(erh_bytes text, erh_bytes raw)
{
    if (text.len != (raw.len + 2) / 3 * 4)
        return false;
    size_t out = 0;
    for (size_t i = 0; i < text.len; i += 4) {
        uint32_t group = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            int v = text.data[i + j] == '=' && i + 4 == text.len && j >= 2 ? (pad++, 0) : base64_value(text.data[i + j]);
            if (v < 0 || (pad && text.data[i + j] != '='))
                return false;
            group = group << 6 | (uint32_t)v;
        }
        for (int j = 0; j < 3 - pad; j++, out++)
            if (out >= raw.len || (char)(group >> (16 - 8 * j)) != raw.data[out])
                return false;
    }
    return out == raw.len;
}

static void check_payload(const json_t *object, const erh_event *event, bool force_base64, erh_bytes sent)
{
    const json_t *payload = json_object_get(object, "payload");
    const json_t *encoding = json_object_get(object, "payload_encoding");
    if (event->payload_omitted) {
        json_int_t size = json_integer_value(json_object_get(object, "payload_size"));
        FUZZ_CHECK(json_is_null(payload) && !encoding, "omitted payload");
        FUZZ_CHECK(json_is_true(json_object_get(object, "payload_omitted")), "payload_omitted");
        FUZZ_CHECK((uint64_t)size == (event->payload_size > INT64_MAX ? INT64_MAX : event->payload_size), "size");
        return;
    }
    FUZZ_CHECK(json_is_string(payload) && json_is_string(encoding), "payload");
    erh_bytes got = {json_string_value(payload), json_string_length(payload)};
    if (force_base64 || !erh_utf8_valid(sent.data, sent.len)) {
        FUZZ_CHECK(strcmp(json_string_value(encoding), "base64") == 0, "encoding");
        FUZZ_CHECK(base64_is(got, sent), "payload is not the base64 of the bytes sent");
    } else {
        FUZZ_CHECK(strcmp(json_string_value(encoding), "plain") == 0, "encoding");
        FUZZ_CHECK(fuzz_equal(got, sent.data, sent.len), "plain payload differs");
    }
}

static void check_int(const json_t *object, const char *key, int64_t expected)
{
    const json_t *value = json_object_get(object, key);
    FUZZ_CHECK(json_is_integer(value) && json_integer_value(value) == expected, "%s", key);
}

static void check_bool(const json_t *object, const char *key, bool expected)
{
    const json_t *value = json_object_get(object, key);
    FUZZ_CHECK(json_is_boolean(value) && json_is_true(value) == expected, "%s", key);
}

static void check_numbers(const json_t *object, const erh_event *e)
{
    check_int(object, "seq", (int64_t)e->seq);
    switch (e->type) {
    case ERH_EV_CONNECTED:
        check_int(object, "peerport", e->peerport);
        check_int(object, "keepalive", e->keepalive);
        if (e->field[ERH_F_PROTO_VER].data)
            check_text(object, "proto_ver", e->field[ERH_F_PROTO_VER]);
        else
            check_int(object, "proto_ver", e->proto_ver);
        check_bool(object, "clean_start", e->clean_start);
        check_int(object, "connected_at", e->connected_at);
        break;
    case ERH_EV_DISCONNECTED:
        check_int(object, "connected_at", e->connected_at);
        check_int(object, "disconnected_at", e->disconnected_at);
        break;
    default:
        check_int(object, "qos", e->qos);
        check_bool(object, "retain", e->retain);
        check_int(object, "ts", e->timestamp);
        break;
    }
}

/* The encoder writes what jansson would: same key order, escapes and numbers. */
static void check_same_as_jansson(const json_t *object, erh_buf encoded)
{
    size_t len = json_dumpb(object, NULL, 0, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *dumped = malloc(len);
    FUZZ_CHECK(dumped && json_dumpb(object, dumped, len, JSON_COMPACT | JSON_PRESERVE_ORDER) == len, "dumping");
    FUZZ_CHECK(fuzz_equal((erh_bytes){dumped, len}, encoded.data, encoded.len), "not the bytes jansson prints");
    free(dumped);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = {data, size};
    erh_event proto = {.type = fuzz_byte(&in) % ERH_EV__COUNT};
    unsigned flags = fuzz_byte(&in);
    proto.seq = fuzz_u64(&in) >> 1; /* below 2^63, as a real sequence number stays */
    proto.timestamp = (int64_t)fuzz_u64(&in);
    proto.connected_at = (int64_t)fuzz_u64(&in);
    proto.disconnected_at = (int64_t)fuzz_u64(&in);
    uint64_t small = fuzz_u64(&in);
    proto.peerport = (int32_t)small;
    proto.keepalive = proto.qos = (int32_t)(small >> 32) % 3;
    proto.proto_ver = (int32_t)(small >> 40);
    proto.clean_start = proto.retain = flags & FLAG;
    for (int f = 0; f < ERH_F__COUNT; f++)
        proto.field[f] = fuzz_field(&in);
    erh_bytes payload = proto.field[ERH_F_PAYLOAD];
    erh_bytes node_field = proto.field[ERH_F_MSG_ID];
    if (flags & NO_USERNAME)
        proto.field[ERH_F_USERNAME] = (erh_bytes){0};
    if (flags & NO_CLIENTID)
        proto.field[ERH_F_CLIENTID] = (erh_bytes){0};
    if (flags & NO_REASON)
        proto.field[ERH_F_REASON] = (erh_bytes){0};
    if (!(flags & TEXT_PROTO_VER))
        proto.field[ERH_F_PROTO_VER] = (erh_bytes){0};
    if (flags & OMIT_PAYLOAD) {
        proto.payload_omitted = true;
        proto.payload_size = small;
        proto.field[ERH_F_PAYLOAD] = (erh_bytes){0};
    }

    /* Encode the copy the glue would queue, as the publisher does. */
    erh_event *event = erh_event_new(&proto);
    FUZZ_CHECK(event != NULL, "copying the event");
    char *node = flags & NO_NODE ? NULL : fuzz_cstring(node_field);
    erh_buf out = {0}, scratch = {0};
    erh_json_options options = {.node = node, .force_base64 = flags & FORCE_BASE64, .scratch = &scratch};
    FUZZ_CHECK(erh_json_encode(event, &options, &out) == ERH_OK, "encoding");

    json_error_t error;
    json_t *object = json_loadb(out.data, out.len, JSON_ALLOW_NUL, &error);
    FUZZ_CHECK(object && json_is_object(object), "not a JSON object: %s", error.text);
    FUZZ_CHECK(strcmp(json_string_value(json_object_get(object, "action")), erh_event_action(event->type)) == 0,
               "action");
    check_text(object, "node", (erh_bytes){node, node ? strlen(node) : 0});
    size_t text_keys = 0;
    for (int f = 0; f < ERH_F__COUNT; f++) {
        if (!keys[event->type][f])
            continue;
        FUZZ_CHECK(fuzz_equal(event->field[f], proto.field[f].data, proto.field[f].len) &&
                       !event->field[f].data == !proto.field[f].data,
                   "the copy of field %d differs", f);
        check_text(object, keys[event->type][f], event->field[f]);
        text_keys++;
    }
    if (event->type == ERH_EV_PUBLISH)
        check_payload(object, event, options.force_base64, payload);
    check_numbers(object, event);
    size_t payload_keys = event->type == ERH_EV_PUBLISH && event->payload_omitted ? 1 : 0;
    FUZZ_CHECK(json_object_size(object) == text_keys + other_keys[event->type] + payload_keys, "%zu keys",
               json_object_size(object));
    check_same_as_jansson(object, out);

    json_decref(object);
    erh_buf_free(&out);
    erh_buf_free(&scratch);
    free(node);
    erh_event_free(event);
    return 0;
}
