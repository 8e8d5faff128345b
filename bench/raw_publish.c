/* The transport's limit on this machine: one rabbitmq-c connection publishing COUNT persistent
 * messages of BODY_BYTES each to a durable topic exchange bound to a durable queue, with publisher
 * confirms in a window of WINDOW, as fast as the broker confirms them. No JSON, no hook, no queue:
 * what is left is the cost of AMQP and of RabbitMQ storing the messages.
 *
 *   raw_publish HOST PORT EXCHANGE QUEUE COUNT BODY_BYTES WINDOW bare|plugin lazy|default
 *
 * bare: only delivery_mode 2. plugin: the properties and headers the plugin sets on every event
 * (DESIGN §4), to tell RabbitMQ's cost of those apart from the plugin's own. lazy: the queue is
 * declared as the plugin declares it by default (x-queue-mode lazy, x-queue-version 2); default:
 * with no arguments, as RabbitMQ makes a queue unless told otherwise.
 *
 * Prints "confirmed N seconds S cpu C": S from the first publish to the last confirm, C this
 * process's CPU time in seconds; exits 0, or says what failed on stderr and exits 1. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "bench_util.h"

#define CHANNEL 1
#define ROUTING_KEY "message.publish"
#define NODE "emqx@127.0.0.1"

static void check_reply(amqp_rpc_reply_t reply, const char *doing)
{
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        die(doing, amqp_error_string2(reply.library_error));
    if (reply.reply_type != AMQP_RESPONSE_NORMAL)
        die(doing, "refused by the broker");
}

static amqp_connection_state_t open_connection(const char *host, int port)
{
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *socket = conn ? amqp_tcp_socket_new(conn) : NULL;
    if (!socket)
        die("creating a connection", "out of memory");
    int rc = amqp_socket_open(socket, host, port);
    if (rc != AMQP_STATUS_OK)
        die("connecting", amqp_error_string2(rc));
    check_reply(amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "logging in");
    amqp_channel_open(conn, CHANNEL);
    check_reply(amqp_get_rpc_reply(conn), "opening a channel");
    return conn;
}

/* The same topology the plugin declares: durable topic exchange, durable queue bound with "#". */
static void declare(amqp_connection_state_t conn, const char *exchange, const char *queue, bool lazy)
{
    amqp_exchange_declare(conn, CHANNEL, amqp_cstring_bytes(exchange), amqp_cstring_bytes("topic"), 0, 1, 0, 0,
                          amqp_empty_table);
    check_reply(amqp_get_rpc_reply(conn), "declaring the exchange");
    amqp_table_entry_t lazy_args[2] = {
        {.key = amqp_cstring_bytes("x-queue-mode"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("lazy")}},
        {.key = amqp_cstring_bytes("x-queue-version"), .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = 2}},
    };
    amqp_table_t args = lazy ? (amqp_table_t){.num_entries = 2, .entries = lazy_args} : amqp_empty_table;
    amqp_queue_declare(conn, CHANNEL, amqp_cstring_bytes(queue), 0, 1, 0, 0, args);
    check_reply(amqp_get_rpc_reply(conn), "declaring the queue");
    amqp_queue_bind(conn, CHANNEL, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange), amqp_cstring_bytes("#"),
                    amqp_empty_table);
    check_reply(amqp_get_rpc_reply(conn), "binding the queue");
    amqp_confirm_select(conn, CHANNEL);
    check_reply(amqp_get_rpc_reply(conn), "selecting publisher confirms");
}

/* What the plugin sets: the same fields, of the same lengths, with a message id per message. */
typedef struct plugin_props {
    amqp_basic_properties_t props;
    amqp_table_entry_t headers[2];
    char message_id[64];
} plugin_props;

static void plugin_props_init(plugin_props *p)
{
    p->headers[0] = (amqp_table_entry_t){
        .key = amqp_cstring_bytes("clientid"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("bench-1")}};
    p->headers[1] = (amqp_table_entry_t){
        .key = amqp_cstring_bytes("node"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(NODE)}};
    p->props = (amqp_basic_properties_t){
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                  AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_HEADERS_FLAG,
        .content_type = amqp_cstring_bytes("application/json"),
        .delivery_mode = AMQP_DELIVERY_PERSISTENT,
        .timestamp = (uint64_t)time(NULL),
        .type = amqp_cstring_bytes("message.publish"),
        .app_id = amqp_cstring_bytes("emqx"),
        .headers = {.num_entries = 2, .entries = p->headers},
    };
}

static void plugin_props_number(plugin_props *p, uint64_t seq)
{
    int len = snprintf(p->message_id, sizeof p->message_id, NODE "-%016llx-%llu", 0x5eedULL,
                       (unsigned long long)seq);
    p->props.message_id = (amqp_bytes_t){.len = (size_t)len, .bytes = p->message_id};
}

/* Read one frame (waiting when block is set) and return the highest tag it confirms, or 0. */
static uint64_t read_confirm(amqp_connection_state_t conn, bool block)
{
    amqp_frame_t frame;
    struct timeval no_wait = {0, 0};
    int rc = amqp_simple_wait_frame_noblock(conn, &frame, block ? NULL : &no_wait);
    if (rc == AMQP_STATUS_TIMEOUT)
        return 0;
    if (rc != AMQP_STATUS_OK)
        die("reading confirms", amqp_error_string2(rc));
    if (frame.frame_type != AMQP_FRAME_METHOD)
        return 0;
    switch (frame.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *ack = frame.payload.method.decoded;
        /* One queue on one channel: RabbitMQ confirms in publish order, so a tag, multiple or
         * not, means everything up to it is stored. */
        return ack->delivery_tag;
    }
    case AMQP_BASIC_NACK_METHOD:
        die("publishing", "the broker nacked a message");
        return 0;
    default:
        die("publishing", amqp_method_name(frame.payload.method.id));
        return 0;
    }
}

int main(int argc, char **argv)
{
    if (argc != 10 || (strcmp(argv[8], "bare") != 0 && strcmp(argv[8], "plugin") != 0) ||
        (strcmp(argv[9], "lazy") != 0 && strcmp(argv[9], "default") != 0)) {
        fprintf(stderr, "usage: %s HOST PORT EXCHANGE QUEUE COUNT BODY_BYTES WINDOW bare|plugin lazy|default\n",
                argv[0]);
        return 2;
    }
    bool plugin = strcmp(argv[8], "plugin") == 0;
    int port = (int)parse_count(argv[2], "PORT");
    uint64_t count = parse_count(argv[5], "COUNT");
    size_t body_len = parse_count(argv[6], "BODY_BYTES");
    uint64_t window = parse_count(argv[7], "WINDOW");

    char *body = malloc(body_len);
    if (!body)
        die("allocating the body", "out of memory");
    memset(body, 'x', body_len);
    amqp_connection_state_t conn = open_connection(argv[1], port);
    declare(conn, argv[3], argv[4], strcmp(argv[9], "lazy") == 0);

    plugin_props props;
    plugin_props_init(&props);
    if (!plugin)
        props.props = (amqp_basic_properties_t){._flags = AMQP_BASIC_DELIVERY_MODE_FLAG,
                                                .delivery_mode = AMQP_DELIVERY_PERSISTENT};
    amqp_bytes_t exchange = amqp_cstring_bytes(argv[3]), routing_key = amqp_cstring_bytes(ROUTING_KEY);
    amqp_bytes_t message = {.len = body_len, .bytes = body};
    uint64_t published = 0, confirmed = 0;
    double start = now_s(), start_cpu = cpu_s();
    while (confirmed < count) {
        while (published < count && published - confirmed < window) {
            if (plugin)
                plugin_props_number(&props, published + 1);
            int rc = amqp_basic_publish(conn, CHANNEL, exchange, routing_key, 1, 0, &props.props, message);
            if (rc != AMQP_STATUS_OK)
                die("publishing", amqp_error_string2(rc));
            published++;
        }
        /* Wait only when nothing more may be sent; otherwise take the confirms already here. */
        bool block = published == count || published - confirmed >= window;
        for (uint64_t tag; (tag = read_confirm(conn, block)) != 0; block = false)
            confirmed = tag > confirmed ? tag : confirmed;
    }
    double seconds = now_s() - start, cpu = cpu_s() - start_cpu;

    printf("confirmed %llu seconds %.6f cpu %.6f\n", (unsigned long long)confirmed, seconds, cpu);
    amqp_channel_close(conn, CHANNEL, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    free(body);
    return 0;
}
