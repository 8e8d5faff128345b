#include "check_run.h"
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "erh_base64.h"
#include "erh_json.h"

#define BYTES(literal) ((erh_bytes){literal, sizeof literal - 1})
#define NODE "emqx@10.0.0.1"

static const erh_json_options options = {.node = NODE};

static erh_event connected(void)
{
    erh_event event = {.type = ERH_EV_CONNECTED, .seq = 41, .connected_at = 1700000000123, .timestamp = 1700000000123,
                       .peerport = 52011, .keepalive = 60, .proto_ver = 5, .clean_start = true};
    event.field[ERH_F_CLIENTID] = BYTES("dev-1");
    event.field[ERH_F_USERNAME] = BYTES("alice");
    event.field[ERH_F_IPADDRESS] = BYTES("192.168.1.20");
    event.field[ERH_F_PROTO_NAME] = BYTES("MQTT");
    event.field[ERH_F_CONN_ID] = BYTES("emqx@10.0.0.1/<0.1234.0>/1700000000123");
    return event;
}

static erh_event disconnected(void)
{
    erh_event event = {.type = ERH_EV_DISCONNECTED, .seq = 42, .connected_at = 1700000000123,
                       .disconnected_at = 1700000009999, .timestamp = 1700000009999};
    event.field[ERH_F_CLIENTID] = BYTES("dev-1");
    event.field[ERH_F_USERNAME] = BYTES("alice");
    event.field[ERH_F_IPADDRESS] = BYTES("192.168.1.20");
    event.field[ERH_F_REASON] = BYTES("keepalive_timeout");
    event.field[ERH_F_CONN_ID] = BYTES("emqx@10.0.0.1/<0.1234.0>/1700000000123");
    return event;
}

static erh_event publish(erh_bytes payload)
{
    erh_event event = {.type = ERH_EV_PUBLISH, .seq = 43, .timestamp = 1700000005555, .qos = 1, .retain = true};
    event.field[ERH_F_CLIENTID] = BYTES("dev-1");
    event.field[ERH_F_USERNAME] = BYTES("alice");
    event.field[ERH_F_MSG_ID] = BYTES("0005f8a1b2c3d4e5f60718293a4b5c6d");
    event.field[ERH_F_TOPIC] = BYTES("sensors/k1/temp");
    event.field[ERH_F_PAYLOAD] = payload;
    return event;
}

/* Encode, check the text is compact with no trailing newline, and decode it back. */
static json_t *round_trip(const erh_event *event, const erh_json_options *opts, erh_buf *out)
{
    ck_assert_int_eq(erh_json_encode(event, opts, out), ERH_OK);
    ck_assert_uint_gt(out->len, 2);
    ck_assert(out->data[0] == '{' && out->data[out->len - 1] == '}');
    ck_assert_ptr_null(memchr(out->data, '\n', out->len));
    json_error_t error;
    json_t *object = json_loadb(out->data, out->len, JSON_ALLOW_NUL, &error);
    ck_assert_msg(object != NULL, "not JSON: %s", error.text);
    ck_assert(json_is_object(object));
    return object;
}

static void assert_keys(const json_t *object, const char *const *keys, size_t count)
{
    ck_assert_uint_eq(json_object_size(object), count);
    size_t i = 0;
    for (void *it = json_object_iter((json_t *)object); it; it = json_object_iter_next((json_t *)object, it), i++)
        ck_assert_str_eq(json_object_iter_key(it), keys[i]);
}

static void assert_bytes(const json_t *object, const char *key, const char *data, size_t len)
{
    const json_t *value = json_object_get(object, key);
    ck_assert_msg(json_is_string(value), "%s is not a string", key);
    ck_assert_uint_eq(json_string_length(value), len);
    ck_assert_msg(memcmp(json_string_value(value), data, len) == 0, "%s differs", key);
}

static void assert_str(const json_t *object, const char *key, const char *expected)
{
    assert_bytes(object, key, expected, strlen(expected));
}

static void assert_int(const json_t *object, const char *key, json_int_t expected)
{
    const json_t *value = json_object_get(object, key);
    ck_assert_msg(json_is_integer(value), "%s is not an integer", key);
    ck_assert_int_eq(json_integer_value(value), expected);
}

static void assert_bool(const json_t *object, const char *key, bool expected)
{
    const json_t *value = json_object_get(object, key);
    ck_assert_msg(json_is_boolean(value), "%s is not a boolean", key);
    ck_assert(json_is_true(value) == expected);
}

static void assert_null(const json_t *object, const char *key)
{
    ck_assert_msg(json_is_null(json_object_get(object, key)), "%s is not null", key);
}

START_TEST(connected_has_every_field_in_order)
{
    static const char *const keys[] = {"action", "node", "clientid", "username", "ipaddress", "peerport",
                                       "keepalive", "proto_name", "proto_ver", "clean_start", "connected_at",
                                       "conn_id", "seq"};
    erh_buf out = {0};
    erh_event event = connected();
    json_t *object = round_trip(&event, &options, &out);
    assert_keys(object, keys, sizeof keys / sizeof keys[0]);
    assert_str(object, "action", "client_connected");
    assert_str(object, "node", NODE);
    assert_str(object, "clientid", "dev-1");
    assert_str(object, "username", "alice");
    assert_str(object, "ipaddress", "192.168.1.20");
    assert_int(object, "peerport", 52011);
    assert_int(object, "keepalive", 60);
    assert_str(object, "proto_name", "MQTT");
    assert_int(object, "proto_ver", 5);
    assert_bool(object, "clean_start", true);
    assert_int(object, "connected_at", 1700000000123);
    assert_str(object, "conn_id", "emqx@10.0.0.1/<0.1234.0>/1700000000123");
    assert_int(object, "seq", 41);
    static const char compact_start[] = "{\"action\":\"client_connected\",\"node\":";
    ck_assert(strncmp(out.data, compact_start, sizeof compact_start - 1) == 0);
    json_decref(object);
    erh_buf_free(&out);
}
END_TEST

START_TEST(disconnected_has_every_field_in_order)
{
    static const char *const keys[] = {"action", "node", "clientid", "username", "ipaddress", "reason",
                                       "connected_at", "disconnected_at", "conn_id", "seq"};
    erh_buf out = {0};
    erh_event event = disconnected();
    json_t *object = round_trip(&event, &options, &out);
    assert_keys(object, keys, sizeof keys / sizeof keys[0]);
    assert_str(object, "action", "client_disconnected");
    assert_str(object, "node", NODE);
    assert_str(object, "clientid", "dev-1");
    assert_str(object, "username", "alice");
    assert_str(object, "ipaddress", "192.168.1.20");
    assert_str(object, "reason", "keepalive_timeout");
    assert_int(object, "connected_at", 1700000000123);
    assert_int(object, "disconnected_at", 1700000009999);
    assert_str(object, "conn_id", "emqx@10.0.0.1/<0.1234.0>/1700000000123");
    assert_int(object, "seq", 42);
    json_decref(object);
    erh_buf_free(&out);
}
END_TEST

START_TEST(publish_has_every_field_in_order)
{
    static const char *const keys[] = {"action", "node", "id", "from_client_id", "from_username", "topic", "qos",
                                       "retain", "payload", "payload_encoding", "ts", "seq"};
    erh_buf out = {0};
    erh_event event = publish(BYTES("{\"t\": 21.5, \"unit\": \"\xC2\xB0" "C\"}"));
    json_t *object = round_trip(&event, &options, &out);
    assert_keys(object, keys, sizeof keys / sizeof keys[0]);
    assert_str(object, "action", "message_publish");
    assert_str(object, "node", NODE);
    assert_str(object, "id", "0005f8a1b2c3d4e5f60718293a4b5c6d");
    assert_str(object, "from_client_id", "dev-1");
    assert_str(object, "from_username", "alice");
    assert_str(object, "topic", "sensors/k1/temp");
    assert_int(object, "qos", 1);
    assert_bool(object, "retain", true);
    assert_str(object, "payload", "{\"t\": 21.5, \"unit\": \"\xC2\xB0" "C\"}");
    assert_str(object, "payload_encoding", "plain");
    assert_int(object, "ts", 1700000005555);
    assert_int(object, "seq", 43);
    json_decref(object);
    erh_buf_free(&out);
}
END_TEST

START_TEST(absent_username_is_null)
{
    erh_buf out = {0};
    erh_event events[] = {connected(), disconnected(), publish(BYTES("x"))};
    const char *keys[] = {"username", "username", "from_username"};
    for (size_t i = 0; i < 3; i++) {
        events[i].field[ERH_F_USERNAME] = (erh_bytes){NULL, 0};
        json_t *object = round_trip(&events[i], &options, &out);
        assert_null(object, keys[i]);
        json_decref(object);
    }
    /* An empty username is a username: "" rather than null. */
    events[0].field[ERH_F_USERNAME] = BYTES("");
    json_t *object = round_trip(&events[0], &options, &out);
    assert_str(object, "username", "");
    json_decref(object);
    erh_buf_free(&out);
}
END_TEST

START_TEST(other_absent_strings_are_null)
{
    erh_buf out = {0};
    erh_event event = disconnected();
    event.field[ERH_F_REASON] = (erh_bytes){NULL, 0};
    event.field[ERH_F_IPADDRESS] = (erh_bytes){NULL, 0};
    const erh_json_options no_node = {.node = NULL};
    json_t *object = round_trip(&event, &no_node, &out);
    assert_null(object, "reason");
    assert_null(object, "ipaddress");
    assert_null(object, "node");
    json_decref(object);
    erh_buf_free(&out);
}
END_TEST

static void assert_base64_payload(const json_t *object, const char *data, size_t len)
{
    erh_buf expected = {0};
    ck_assert_int_eq(erh_base64_encode(data, len, &expected), ERH_OK);
    assert_bytes(object, "payload", expected.data ? expected.data : "", expected.len);
    assert_str(object, "payload_encoding", "base64");
    erh_buf_free(&expected);
}

START_TEST(non_utf8_payload_is_base64)
{
    static const char binary[] = "\x00\x01\xFF\xFEjpeg\x80";
    erh_buf out = {0};
    erh_event event = publish((erh_bytes){binary, sizeof binary - 1});
    json_t *object = round_trip(&event, &options, &out);
    assert_base64_payload(object, binary, sizeof binary - 1);
    assert_str(object, "payload", "AAH//mpwZWeA");
    json_decref(object);
    erh_buf_free(&out);
}
END_TEST

START_TEST(force_base64_encodes_every_payload)
{
    const erh_json_options forced = {.node = NODE, .force_base64 = true};
    erh_buf out = {0};
    erh_event event = publish(BYTES("hello"));
    json_t *object = round_trip(&event, &forced, &out);
    assert_str(object, "payload", "aGVsbG8=");
    assert_str(object, "payload_encoding", "base64");
    json_decref(object);

    event.field[ERH_F_PAYLOAD] = BYTES("");
    object = round_trip(&event, &forced, &out);
    assert_base64_payload(object, "", 0);
    json_decref(object);
    erh_buf_free(&out);
}
END_TEST

START_TEST(empty_payload_is_plain)
{
    erh_buf out = {0};
    erh_event event = publish(BYTES(""));
    json_t *object = round_trip(&event, &options, &out);
    assert_str(object, "payload", "");
    assert_str(object, "payload_encoding", "plain");
    json_decref(object);
    erh_buf_free(&out);
}
END_TEST

START_TEST(omitted_payload_has_its_size_and_a_flag)
{
    static const char *const keys[] = {"action", "node", "id", "from_client_id", "from_username", "topic", "qos",
                                       "retain", "payload", "payload_omitted", "payload_size", "ts", "seq"};
    const erh_json_options forced = {.node = NODE, .force_base64 = true};
    erh_buf out = {0};
    erh_event event = publish((erh_bytes){NULL, 0});
    event.payload_omitted = true;
    event.payload_size = 5000000000u;
    json_t *object = round_trip(&event, &forced, &out);
    assert_keys(object, keys, sizeof keys / sizeof keys[0]);
    assert_null(object, "payload");
    assert_bool(object, "payload_omitted", true);
    assert_int(object, "payload_size", 5000000000);
    json_decref(object);
    erh_buf_free(&out);
}
END_TEST

START_TEST(nul_bytes_inside_strings_survive)
{
    erh_buf out = {0};
    erh_event event = publish(BYTES("a\0b"));
    event.field[ERH_F_CLIENTID] = BYTES("dev\0one");
    event.field[ERH_F_TOPIC] = BYTES("t/\0");
    json_t *object = round_trip(&event, &options, &out);
    assert_bytes(object, "from_client_id", "dev\0one", 7);
    assert_bytes(object, "topic", "t/\0", 3);
    assert_bytes(object, "payload", "a\0b", 3);
    assert_str(object, "payload_encoding", "plain");
    ck_assert_ptr_null(memchr(out.data, '\0', out.len));
    ck_assert_ptr_nonnull(memmem(out.data, out.len, "\"dev\\u0000one\"", 14));
    json_decref(object);
    erh_buf_free(&out);
}
END_TEST

START_TEST(invalid_utf8_strings_are_sanitized)
{
    erh_buf out = {0};
    erh_event event = connected();
    event.field[ERH_F_CLIENTID] = BYTES("dev\xFF-\xC3");
    event.field[ERH_F_USERNAME] = BYTES("\xED\xA0\x80" "bob");
    event.field[ERH_F_REASON] = BYTES("unused by connected");
    json_t *object = round_trip(&event, &options, &out);
    assert_str(object, "clientid", "dev\xEF\xBF\xBD-\xEF\xBF\xBD");
    assert_str(object, "username", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "bob");
    assert_str(object, "ipaddress", "192.168.1.20"); /* neighbours untouched */
    json_decref(object);

    erh_event message = publish(BYTES("\x80"));
    message.field[ERH_F_TOPIC] = BYTES("a/\xC0\xAF");
    object = round_trip(&message, &options, &out);
    assert_str(object, "topic", "a/\xEF\xBF\xBD\xEF\xBF\xBD");
    assert_str(object, "payload", "gA==");
    json_decref(object);
    erh_buf_free(&out);
}
END_TEST

START_TEST(large_payload_round_trips)
{
    const size_t size = 1 << 20;
    char *payload = malloc(size);
    ck_assert_ptr_nonnull(payload);
    for (size_t i = 0; i < size; i++)
        payload[i] = (char)(' ' + i % 95);
    erh_buf out = {0};
    erh_event event = publish((erh_bytes){payload, size});
    json_t *object = round_trip(&event, &options, &out);
    assert_bytes(object, "payload", payload, size);
    assert_str(object, "payload_encoding", "plain");
    json_decref(object);

    payload[size / 2] = (char)0xFF;
    object = round_trip(&event, &options, &out);
    assert_base64_payload(object, payload, size);
    json_decref(object);
    erh_buf_free(&out);
    free(payload);
}
END_TEST

START_TEST(output_is_replaced_not_appended)
{
    erh_buf out = {0};
    ck_assert_int_eq(erh_buf_append(&out, "stale", 5), ERH_OK);
    erh_event event = publish(BYTES("a much longer payload than the next one"));
    json_t *object = round_trip(&event, &options, &out);
    json_decref(object);
    size_t first_len = out.len;
    event.field[ERH_F_PAYLOAD] = BYTES("short");
    object = round_trip(&event, &options, &out);
    ck_assert_uint_lt(out.len, first_len);
    assert_str(object, "payload", "short");
    json_decref(object);
    erh_buf_free(&out);
}
END_TEST

/* The text of key's value in out, from just after "key": up to the next field. */
static const char *raw_value(const erh_buf *out, const char *key)
{
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\":", key);
    const char *at = memmem(out->data, out->len, quoted, strlen(quoted));
    ck_assert_msg(at != NULL, "no %s", key);
    return at + strlen(quoted);
}

START_TEST(every_ascii_byte_round_trips)
{
    /* As jansson escapes them: the short forms, \u00XX in upper case for the other controls, '/'
     * and DEL as they are. */
    static const char escaped[] =
        "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000B\\f\\r\\u000E\\u000F"
        "\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001A\\u001B\\u001C\\u001D"
        "\\u001E\\u001F !\\\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\\\]^_`"
        "abcdefghijklmnopqrstuvwxyz{|}~\x7f\",";
    char ascii[128];
    for (size_t i = 0; i < sizeof ascii; i++)
        ascii[i] = (char)i;
    erh_buf out = {0};
    erh_event event = connected();
    event.field[ERH_F_CLIENTID] = (erh_bytes){ascii, sizeof ascii};
    json_t *object = round_trip(&event, &options, &out);
    assert_bytes(object, "clientid", ascii, sizeof ascii);
    const char *clientid = raw_value(&out, "clientid");
    ck_assert(strncmp(clientid, escaped, sizeof escaped - 1) == 0);
    ck_assert_ptr_nonnull(memmem(clientid, sizeof escaped - 1, "\\\"", strlen("\\\"")));
    ck_assert_ptr_nonnull(memmem(clientid, sizeof escaped - 1, "\\\\", strlen("\\\\")));
    ck_assert_ptr_nonnull(memmem(clientid, sizeof escaped - 1, "\\n", strlen("\\n")));
    ck_assert_ptr_nonnull(memmem(clientid, sizeof escaped - 1, "\\u0001", strlen("\\u0001")));
    ck_assert_ptr_null(memmem(out.data, out.len, "\\/", 2));
    json_decref(object);
    erh_buf_free(&out);
}
END_TEST

START_TEST(connected_is_byte_exact)
{
    static const char expected[] =
        "{\"action\":\"client_connected\",\"node\":\"emqx@10.0.0.1\",\"clientid\":\"dev-1\",\"username\":\"alice\","
        "\"ipaddress\":\"192.168.1.20\",\"peerport\":52011,\"keepalive\":60,\"proto_name\":\"MQTT\",\"proto_ver\":5,"
        "\"clean_start\":true,\"connected_at\":1700000000123,"
        "\"conn_id\":\"emqx@10.0.0.1/<0.1234.0>/1700000000123\",\"seq\":41}";
    erh_buf out = {0};
    erh_event event = connected();
    ck_assert_int_eq(erh_json_encode(&event, &options, &out), ERH_OK);
    ck_assert_uint_eq(out.len, sizeof expected - 1);
    ck_assert(memcmp(out.data, expected, out.len) == 0);
    erh_buf_free(&out);
}
END_TEST

/* An MQTT-SN client through EMQX's gateway: its proto_ver is text, and stays text. */
START_TEST(a_gateways_text_proto_ver_stays_text)
{
    erh_buf out = {0};
    erh_event event = connected();
    event.field[ERH_F_PROTO_NAME] = BYTES("MQTT-SN");
    event.field[ERH_F_PROTO_VER] = BYTES("1.2");
    json_t *object = round_trip(&event, &options, &out);
    assert_str(object, "proto_ver", "1.2");
    assert_str(object, "proto_name", "MQTT-SN");
    json_decref(object);
    erh_buf_free(&out);
}
END_TEST

/* key's value in out is exactly text: a ',' or the closing '}' follows it. */
static void assert_raw_number(const erh_buf *out, const char *key, const char *text)
{
    const char *value = raw_value(out, key);
    size_t len = strlen(text);
    ck_assert_uint_lt((size_t)(value - out->data) + len, out->len);
    ck_assert_msg(strncmp(value, text, len) == 0 && (value[len] == ',' || value[len] == '}'), "%s is not %s", key,
                  text);
}

START_TEST(integers_are_exact)
{
    static const struct {
        int64_t value;
        const char *text;
    } cases[] = {
        {0, "0"}, {1, "1"}, {9, "9"}, {10, "10"}, {99, "99"}, {100, "100"}, {101, "101"},
        {1000000000000000000, "1000000000000000000"}, {INT64_MAX, "9223372036854775807"},
        {-1, "-1"}, {-10, "-10"}, {-99, "-99"}, {INT64_MIN, "-9223372036854775808"},
    };
    erh_buf out = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* connected_at takes any int64; seq and payload_size are unsigned and never negative. */
        erh_event event = connected();
        event.connected_at = cases[i].value;
        json_t *object = round_trip(&event, &options, &out);
        assert_int(object, "connected_at", cases[i].value);
        assert_raw_number(&out, "connected_at", cases[i].text);
        json_decref(object);
        if (cases[i].value < 0)
            continue;

        event.seq = (uint64_t)cases[i].value;
        object = round_trip(&event, &options, &out);
        assert_int(object, "seq", cases[i].value);
        assert_raw_number(&out, "seq", cases[i].text);
        json_decref(object);

        erh_event message = publish((erh_bytes){NULL, 0});
        message.payload_omitted = true;
        message.payload_size = (uint64_t)cases[i].value;
        object = round_trip(&message, &options, &out);
        assert_int(object, "payload_size", cases[i].value);
        assert_raw_number(&out, "payload_size", cases[i].text);
        json_decref(object);
    }
    /* int32 fields at their limits. */
    erh_event event = connected();
    event.peerport = INT32_MIN;
    event.keepalive = INT32_MAX;
    json_t *object = round_trip(&event, &options, &out);
    assert_int(object, "peerport", INT32_MIN);
    assert_int(object, "keepalive", INT32_MAX);
    json_decref(object);
    erh_buf_free(&out);
}
END_TEST

/* Encode into a buffer that already holds cap bytes of room. */
static void assert_encodes_into(size_t cap, const erh_event *event, const char *expected, size_t len)
{
    erh_buf out = {malloc(cap), 0, cap};
    ck_assert_ptr_nonnull(out.data);
    char *before = out.data;
    ck_assert_int_eq(erh_json_encode(event, &options, &out), ERH_OK);
    ck_assert_uint_eq(out.len, len);
    ck_assert(memcmp(out.data, expected, len) == 0);
    if (cap >= len)
        ck_assert_ptr_eq(out.data, before); /* enough room: no allocation */
    erh_buf_free(&out);
}

START_TEST(small_or_empty_output_buffer_grows)
{
    erh_buf reference = {0};
    erh_event event = publish(BYTES("\"quoted\"\n\x01 and more text than fits the first 256 bytes of a buffer, "
                                    "so that it has to grow while a string is being escaped into it: \\ \x1f"));
    ck_assert_int_eq(erh_json_encode(&event, &options, &reference), ERH_OK);
    ck_assert_uint_gt(reference.len, 256);
    size_t len = reference.len;
    const size_t caps[] = {1, 10, 255, 256, len - 7, len - 1, len, len + 1};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
        assert_encodes_into(caps[i], &event, reference.data, len);
    erh_buf_free(&reference);
}
END_TEST

START_TEST(scratch_buffer_is_reused)
{
    erh_buf out = {0}, scratch = {0};
    const erh_json_options with_scratch = {.node = NODE, .scratch = &scratch};
    erh_event event = connected();
    event.field[ERH_F_CLIENTID] = BYTES("dev\xFF\n");
    event.field[ERH_F_CONN_ID] = BYTES("\xC0 conn");
    json_t *object = round_trip(&event, &with_scratch, &out);
    assert_str(object, "clientid", "dev\xEF\xBF\xBD\n");
    assert_str(object, "conn_id", "\xEF\xBF\xBD conn");
    json_decref(object);
    ck_assert_ptr_nonnull(scratch.data);
    char *kept = scratch.data;
    object = round_trip(&event, &with_scratch, &out);
    assert_str(object, "clientid", "dev\xEF\xBF\xBD\n");
    ck_assert_ptr_eq(scratch.data, kept);
    json_decref(object);
    erh_buf_free(&scratch);
    erh_buf_free(&out);
}
END_TEST

START_TEST(unknown_event_type_is_refused)
{
    erh_buf out = {0};
    erh_event event = connected();
    event.type = ERH_EV__COUNT;
    ck_assert_int_eq(erh_json_encode(&event, &options, &out), ERH_ERR_BADARG);
    ck_assert_uint_eq(out.len, 0);
    erh_buf_free(&out);
}
END_TEST

/* test/c/Makefile links this test with --wrap=realloc: the encoder's allocations (all in erh_buf)
 * come here, and reallocs_left > 0 lets that many succeed before the next one fails. */
void *__real_realloc(void *data, size_t size);
static long reallocs_left = -1; /* never fail */

void *__wrap_realloc(void *data, size_t size)
{
    if (reallocs_left == 0)
        return NULL;
    if (reallocs_left > 0)
        reallocs_left--;
    return __real_realloc(data, size);
}

/* Fail the n-th allocation for n = 0, 1, ... until the encoding needs no more than n: each failure
 * is ERH_ERR_NOMEM with nothing in out, and nothing leaks. */
static void assert_survives_each_allocation_failing(const erh_event *event, const erh_json_options *opts)
{
    erh_status st = ERH_ERR_NOMEM;
    long failures = 0;
    for (long n = 0; st != ERH_OK; n++) {
        erh_buf out = {0};
        reallocs_left = n;
        st = erh_json_encode(event, opts, &out);
        reallocs_left = -1;
        ck_assert_msg(st == ERH_OK || st == ERH_ERR_NOMEM, "status %d", st);
        if (st != ERH_OK) {
            ck_assert_uint_eq(out.len, 0);
            failures++;
        } else {
            json_decref(round_trip(event, opts, &out));
        }
        erh_buf_free(&out);
    }
    ck_assert_int_gt(failures, 0);
}

START_TEST(survives_each_allocation_failing)
{
    erh_event events[] = {connected(), disconnected(), publish(BYTES("\xFF binary")), publish(BYTES("plain"))};
    events[0].field[ERH_F_CLIENTID] = BYTES("bad \xFF id"); /* sanitized in the scratch buffer */
    events[3].field[ERH_F_TOPIC] = BYTES("t/\xC3");
    erh_buf scratch = {0};
    const erh_json_options own_scratch = {.node = NODE, .scratch = &scratch};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        assert_survives_each_allocation_failing(&events[i], &options);
        assert_survives_each_allocation_failing(&events[i], &own_scratch);
        erh_buf_free(&scratch);
    }
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_set_timeout(tc, 60); /* the 1 MB payload under valgrind */
    tcase_add_test(tc, connected_has_every_field_in_order);
    tcase_add_test(tc, disconnected_has_every_field_in_order);
    tcase_add_test(tc, publish_has_every_field_in_order);
    tcase_add_test(tc, absent_username_is_null);
    tcase_add_test(tc, other_absent_strings_are_null);
    tcase_add_test(tc, non_utf8_payload_is_base64);
    tcase_add_test(tc, force_base64_encodes_every_payload);
    tcase_add_test(tc, empty_payload_is_plain);
    tcase_add_test(tc, omitted_payload_has_its_size_and_a_flag);
    tcase_add_test(tc, nul_bytes_inside_strings_survive);
    tcase_add_test(tc, invalid_utf8_strings_are_sanitized);
    tcase_add_test(tc, large_payload_round_trips);
    tcase_add_test(tc, output_is_replaced_not_appended);
    tcase_add_test(tc, unknown_event_type_is_refused);
    tcase_add_test(tc, every_ascii_byte_round_trips);
    tcase_add_test(tc, connected_is_byte_exact);
    tcase_add_test(tc, a_gateways_text_proto_ver_stays_text);
    tcase_add_test(tc, integers_are_exact);
    tcase_add_test(tc, small_or_empty_output_buffer_grows);
    tcase_add_test(tc, scratch_buffer_is_reused);
    tcase_add_test(tc, survives_each_allocation_failing);
}

int main(void)
{
    return check_run("json", add_tests);
}
