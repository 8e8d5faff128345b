#include "erh_amqp.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <amqp_tcp_socket.h>

#include "erh_tls.h"

#define CHANNEL 1
#define FRAME_MAX 131072

static amqp_bytes_t to_amqp(erh_bytes bytes)
{
    return (amqp_bytes_t){.len = bytes.len, .bytes = (void *)bytes.data};
}

static erh_bytes from_amqp(amqp_bytes_t bytes)
{
    return (erh_bytes){.data = bytes.bytes, .len = bytes.len};
}

static erh_status fail(erh_amqp *amqp, erh_status status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(amqp->errstr, sizeof amqp->errstr, fmt, args);
    va_end(args);
    return status;
}

/* Turn an RPC reply into a status; a broker refusal (403 ACCESS_REFUSED) is a login error. */
static erh_status check_reply(erh_amqp *amqp, amqp_rpc_reply_t reply, const char *doing)
{
    switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return ERH_OK;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return fail(amqp, reply.library_error == AMQP_STATUS_TIMEOUT ? ERH_ERR_TIMEOUT : ERH_ERR_SOCKET,
                    "%s: %s", doing, amqp_error_string2(reply.library_error));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *close = reply.reply.decoded;
            return fail(amqp, close->reply_code == AMQP_ACCESS_REFUSED ? ERH_ERR_LOGIN : ERH_ERR_PROTOCOL,
                        "%s: connection closed by broker: %u %.*s", doing, close->reply_code,
                        (int)close->reply_text.len, (const char *)close->reply_text.bytes);
        }
        if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *close = reply.reply.decoded;
            return fail(amqp, close->reply_code == AMQP_ACCESS_REFUSED ? ERH_ERR_LOGIN : ERH_ERR_PROTOCOL,
                        "%s: channel closed by broker: %u %.*s", doing, close->reply_code,
                        (int)close->reply_text.len, (const char *)close->reply_text.bytes);
        }
        return fail(amqp, ERH_ERR_PROTOCOL, "%s: unexpected method %s", doing,
                    amqp_method_name(reply.reply.id));
    default:
        return fail(amqp, ERH_ERR_PROTOCOL, "%s: no reply", doing);
    }
}

static struct timeval ms_to_timeval(unsigned ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

/* A table entry holding a UTF-8 string: queue arguments and message headers. */
static amqp_table_entry_t utf8_entry(const char *key, amqp_bytes_t value)
{
    return (amqp_table_entry_t){.key = amqp_cstring_bytes(key),
                                .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = value}};
}

/* Quorum queues must say so when declared; classic is the broker's default. A classic queue is
 * lazy and of version 2 unless configured otherwise: its persistent events go to disk at once
 * instead of piling up in the broker's memory while consumers are away. RabbitMQ refuses to
 * declare an existing queue with other arguments, so each can be left out to match it. */
static void queue_arguments(const erh_config *config, amqp_table_t *args)
{
    amqp_table_entry_t *entry = args->entries;
    if (strcmp(config->queue_type, "classic") != 0) {
        *entry++ = utf8_entry("x-queue-type", amqp_cstring_bytes(config->queue_type));
    } else {
        if (strcmp(config->queue_mode, "default") != 0)
            *entry++ = utf8_entry("x-queue-mode", amqp_cstring_bytes(config->queue_mode));
        if (config->queue_version != 0)
            *entry++ = (amqp_table_entry_t){.key = amqp_cstring_bytes("x-queue-version"),
                                            .value = {.kind = AMQP_FIELD_KIND_I32,
                                                      .value.i32 = (int32_t)config->queue_version}};
    }
    args->num_entries = (int)(entry - args->entries);
}

static erh_status declare_topology(erh_amqp *amqp, const erh_config *config)
{
    amqp_connection_state_t conn = amqp->conn;
    amqp_bytes_t exchange = amqp_cstring_bytes(config->exchange);
    amqp_exchange_declare(conn, CHANNEL, exchange, amqp_cstring_bytes(config->exchange_type), 0, 1, 0, 0,
                          amqp_empty_table);
    erh_status st = check_reply(amqp, amqp_get_rpc_reply(conn), "declaring the exchange");
    if (st != ERH_OK)
        return st;

    amqp_table_entry_t args[2];
    amqp_table_t queue_args = {.num_entries = 0, .entries = args};
    queue_arguments(config, &queue_args);
    if (config->unroutable_queue[0]) {
        amqp_queue_declare(conn, CHANNEL, amqp_cstring_bytes(config->unroutable_queue), 0, 1, 0, 0, queue_args);
        st = check_reply(amqp, amqp_get_rpc_reply(conn), "declaring the unroutable queue");
        if (st != ERH_OK)
            return st;
    }
    for (size_t i = 0; i < config->n_queues; i++) {
        const erh_queue_decl *queue = &config->queues[i];
        amqp_bytes_t name = amqp_cstring_bytes(queue->name);
        amqp_queue_declare(conn, CHANNEL, name, 0, 1, 0, 0, queue_args);
        st = check_reply(amqp, amqp_get_rpc_reply(conn), "declaring a queue");
        for (size_t b = 0; st == ERH_OK && b < queue->n_bindings; b++) {
            amqp_queue_bind(conn, CHANNEL, name, exchange, amqp_cstring_bytes(queue->bindings[b]),
                            amqp_empty_table);
            st = check_reply(amqp, amqp_get_rpc_reply(conn), "binding a queue");
        }
        if (st != ERH_OK)
            return st;
    }
    return ERH_OK;
}

/* A plain TCP socket, or a TLS one set up from the tls_* keys; the connection owns it. */
static erh_status new_socket(erh_amqp *amqp, const erh_config *config, const erh_server *server,
                             amqp_socket_t **socket)
{
    if (!config->tls_enable) {
        *socket = amqp_tcp_socket_new(amqp->conn);
        return *socket ? ERH_OK : fail(amqp, ERH_ERR_NOMEM, "creating a socket: out of memory");
    }
    *socket = erh_tls_socket_new(amqp->conn, config, server, amqp->errstr, sizeof amqp->errstr);
    return *socket ? ERH_OK : ERH_ERR_BADARG;
}

/* A failed TLS handshake or login says more than rabbitmq-c's "SSL connection failed". */
static erh_status with_tls_reason(erh_amqp *amqp, const erh_config *config, erh_status st)
{
    if (st != ERH_OK && config->tls_enable)
        erh_tls_explain_failure(amqp->errstr, sizeof amqp->errstr);
    return st;
}

/* PLAIN sends username and password; EXTERNAL lets the broker take the name from the client
 * certificate the TLS handshake presented. */
static amqp_rpc_reply_t login(erh_amqp *amqp, const erh_config *config)
{
    if (config->auth_external)
        return amqp_login(amqp->conn, config->vhost, 0, FRAME_MAX, (int)config->heartbeat_s,
                          AMQP_SASL_METHOD_EXTERNAL, config->username);
    return amqp_login(amqp->conn, config->vhost, 0, FRAME_MAX, (int)config->heartbeat_s, AMQP_SASL_METHOD_PLAIN,
                      config->username, config->password);
}

static erh_status open_session(erh_amqp *amqp, const erh_config *config, const erh_server *server)
{
    amqp_socket_t *socket;
    erh_status st = new_socket(amqp, config, server, &socket);
    if (st != ERH_OK)
        return st;
    struct timeval timeout = ms_to_timeval(config->connect_timeout_ms);
    amqp_set_handshake_timeout(amqp->conn, &timeout);
    amqp_set_rpc_timeout(amqp->conn, &timeout);

    int rc = amqp_socket_open_noblock(socket, server->host, server->port, &timeout);
    if (rc != AMQP_STATUS_OK)
        return with_tls_reason(amqp, config,
                               fail(amqp, rc == AMQP_STATUS_TIMEOUT ? ERH_ERR_TIMEOUT : ERH_ERR_SOCKET,
                                    "connecting to %s:%d: %s", server->host, server->port, amqp_error_string2(rc)));
    /* A broker that stops reading (memory alarm, dead peer) must not hold a publisher in send()
     * forever: the send fails, and the connection is replaced. */
    setsockopt(amqp_get_sockfd(amqp->conn), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);

    st = with_tls_reason(amqp, config, check_reply(amqp, login(amqp, config), "logging in"));
    if (st != ERH_OK)
        return st;
    amqp_channel_open(amqp->conn, CHANNEL);
    st = check_reply(amqp, amqp_get_rpc_reply(amqp->conn), "opening a channel");
    if (st == ERH_OK)
        st = declare_topology(amqp, config);
    if (st != ERH_OK)
        return st;
    amqp_confirm_select(amqp->conn, CHANNEL);
    return check_reply(amqp, amqp_get_rpc_reply(amqp->conn), "selecting publisher confirms");
}

erh_status erh_amqp_connect(erh_amqp *amqp, const erh_config *config, const erh_server *server)
{
    erh_amqp_close(amqp, false);
    amqp->errstr[0] = '\0';
    amqp->last_tag = 0;
    amqp->conn = amqp_new_connection();
    if (!amqp->conn)
        return fail(amqp, ERH_ERR_NOMEM, "creating a connection: out of memory");
    erh_status st = open_session(amqp, config, server);
    if (st != ERH_OK)
        erh_amqp_close(amqp, false);
    return st;
}

erh_status erh_amqp_publish(erh_amqp *amqp, const char *exchange, const erh_amqp_message *message,
                            uint64_t *tag)
{
    amqp_table_entry_t headers[2] = {
        utf8_entry("clientid", to_amqp(message->clientid)),
        utf8_entry("node", amqp_cstring_bytes(message->node)),
    };
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                  AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_APP_ID_FLAG |
                  AMQP_BASIC_HEADERS_FLAG,
        .content_type = amqp_cstring_bytes("application/json"),
        .delivery_mode = AMQP_DELIVERY_PERSISTENT,
        .message_id = to_amqp(message->message_id),
        .timestamp = (uint64_t)message->timestamp_s,
        .type = amqp_cstring_bytes(message->type),
        .app_id = amqp_cstring_bytes("emqx"),
        .headers = {.num_entries = 2, .entries = headers},
    };
    int rc = amqp_basic_publish(amqp->conn, CHANNEL, amqp_cstring_bytes(exchange), to_amqp(message->routing_key),
                                1, 0, &props, to_amqp(message->body));
    if (rc != AMQP_STATUS_OK)
        return fail(amqp, ERH_ERR_SOCKET, "publishing: %s", amqp_error_string2(rc));
    *tag = ++amqp->last_tag;
    return ERH_OK;
}

/* A basic.return is followed by the returned message's header and body; read them so the
 * stream stays in step, and report the routing key and message id. */
static erh_status handle_return(erh_amqp *amqp, const amqp_frame_t *frame, const erh_amqp_handler *handler)
{
    const amqp_basic_return_t *ret = frame->payload.method.decoded;
    char routing_key[256], reply_text[256];
    size_t rk_len = ret->routing_key.len < sizeof routing_key ? ret->routing_key.len : sizeof routing_key;
    size_t text_len = ret->reply_text.len < sizeof reply_text ? ret->reply_text.len : sizeof reply_text;
    memcpy(routing_key, ret->routing_key.bytes, rk_len);
    memcpy(reply_text, ret->reply_text.bytes, text_len);

    amqp_message_t message;
    erh_status st = check_reply(amqp, amqp_read_message(amqp->conn, frame->channel, &message, 0),
                                "reading a returned message");
    if (st != ERH_OK)
        return st;
    erh_bytes message_id = {0};
    if (message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        message_id = from_amqp(message.properties.message_id);
    handler->returned(handler->ctx, (erh_bytes){routing_key, rk_len}, message_id,
                      (erh_bytes){reply_text, text_len});
    amqp_destroy_message(&message);
    return ERH_OK;
}

static erh_status handle_close(erh_amqp *amqp, const amqp_frame_t *frame)
{
    if (frame->payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(amqp->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    }
    amqp_rpc_reply_t reply = {.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION, .reply = frame->payload.method};
    return check_reply(amqp, reply, "publishing");
}

erh_status erh_amqp_service(erh_amqp *amqp, const erh_amqp_handler *handler)
{
    erh_status st = ERH_OK;
    while (st == ERH_OK) {
        amqp_frame_t frame;
        struct timeval no_wait = {0, 0};
        int rc = amqp_simple_wait_frame_noblock(amqp->conn, &frame, &no_wait);
        if (rc == AMQP_STATUS_TIMEOUT)
            break;
        if (rc != AMQP_STATUS_OK)
            return fail(amqp, rc == AMQP_STATUS_HEARTBEAT_TIMEOUT ? ERH_ERR_TIMEOUT : ERH_ERR_SOCKET,
                        "reading from the broker: %s", amqp_error_string2(rc));
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        switch (frame.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            const amqp_basic_ack_t *ack = frame.payload.method.decoded;
            handler->ack(handler->ctx, ack->delivery_tag, ack->multiple);
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            const amqp_basic_nack_t *nack = frame.payload.method.decoded;
            handler->nack(handler->ctx, nack->delivery_tag, nack->multiple);
            break;
        }
        case AMQP_BASIC_RETURN_METHOD:
            st = handle_return(amqp, &frame, handler);
            break;
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
            st = handle_close(amqp, &frame);
            break;
        default:
            break;
        }
    }
    amqp_maybe_release_buffers(amqp->conn);
    return st;
}

int erh_amqp_fd(const erh_amqp *amqp)
{
    return amqp->conn ? amqp_get_sockfd(amqp->conn) : -1;
}

void erh_amqp_hold(erh_amqp *amqp, bool hold)
{
    int cork = hold;
    if (amqp->conn)
        setsockopt(amqp_get_sockfd(amqp->conn), IPPROTO_TCP, TCP_CORK, &cork, sizeof cork);
}

void erh_amqp_close(erh_amqp *amqp, bool polite)
{
    if (!amqp->conn)
        return;
    if (polite) {
        amqp_channel_close(amqp->conn, CHANNEL, AMQP_REPLY_SUCCESS);
        amqp_connection_close(amqp->conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(amqp->conn);
    amqp->conn = NULL;
}
