#include "erh_amqp.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <amqp_tcp_socket.h>

#include "erh_clock.h"
#include "erh_tls.h"

#define CHANNEL 1
#define FRAME_MAX 131072
/* Frame header and end marker. */
#define FRAME_OVERHEAD 8
/* A basic.publish method and content header without their strings: ids, lengths, flags, numbers. */
#define PUBLISH_FIXED_BYTES 128
/* Longest wait for the broker's reply to a polite close (at most connect_timeout_ms). */
#define CLOSE_TIMEOUT_MS 1000

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
 * certificate the TLS handshake presented. RabbitMQ says connection.blocked only to a client that
 * lists the capability, and rabbitmq-c 0.11 lists just authentication_failure_close and
 * exchange_exchange_bindings; it merges this table into its own. */
static amqp_rpc_reply_t login(erh_amqp *amqp, const erh_config *config)
{
    amqp_table_entry_t capability = {.key = amqp_cstring_bytes("connection.blocked"),
                                     .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}};
    amqp_table_entry_t property = {
        .key = amqp_cstring_bytes("capabilities"),
        .value = {.kind = AMQP_FIELD_KIND_TABLE, .value.table = {.num_entries = 1, .entries = &capability}}};
    amqp_table_t properties = {.num_entries = 1, .entries = &property};
    if (config->auth_external)
        return amqp_login_with_properties(amqp->conn, config->vhost, 0, FRAME_MAX, (int)config->heartbeat_s,
                                          &properties, AMQP_SASL_METHOD_EXTERNAL, config->username);
    return amqp_login_with_properties(amqp->conn, config->vhost, 0, FRAME_MAX, (int)config->heartbeat_s, &properties,
                                      AMQP_SASL_METHOD_PLAIN, config->username, config->password);
}

/* The kernel ends a connection whose sent data stays unacknowledged, or whose window stays closed,
 * for longer than ms (0: never): the bound on a wait inside rabbitmq-c that erh_flow could not
 * prevent, such as the rest of a message larger than the whole send buffer. */
static void set_user_timeout(erh_amqp *amqp, unsigned ms)
{
    setsockopt(amqp_get_sockfd(amqp->conn), IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
}

/* Keep a duplicate of the socket for erh_amqp_interrupt: rabbitmq-c may close its own descriptor
 * on an error, and a number closed under another thread could be reused by an unrelated file. */
static void watch_socket(erh_amqp *amqp, int fd)
{
    pthread_mutex_lock(&amqp->watch_lock);
    if (amqp->watch_fd >= 0)
        close(amqp->watch_fd);
    amqp->watch_fd = fd >= 0 ? dup(fd) : -1;
    pthread_mutex_unlock(&amqp->watch_lock);
}

static erh_status open_session(erh_amqp *amqp, const erh_config *config, const erh_server *server, unsigned timeout_ms)
{
    amqp_socket_t *socket;
    erh_status st = new_socket(amqp, config, server, &socket);
    if (st != ERH_OK)
        return st;
    struct timeval timeout = ms_to_timeval(timeout_ms);
    amqp_set_handshake_timeout(amqp->conn, &timeout);
    amqp_set_rpc_timeout(amqp->conn, &timeout);

    int rc = amqp_socket_open_noblock(socket, server->host, server->port, &timeout);
    if (rc != AMQP_STATUS_OK)
        return with_tls_reason(amqp, config,
                               fail(amqp, rc == AMQP_STATUS_TIMEOUT ? ERH_ERR_TIMEOUT : ERH_ERR_SOCKET,
                                    "connecting to %s:%d: %s", server->host, server->port, amqp_error_string2(rc)));
    watch_socket(amqp, amqp_get_sockfd(amqp->conn));
    set_user_timeout(amqp, amqp->stall_ms);

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

void erh_amqp_init(erh_amqp *amqp)
{
    *amqp = (erh_amqp){.watch_fd = -1};
    pthread_mutex_init(&amqp->watch_lock, NULL);
}

void erh_amqp_destroy(erh_amqp *amqp)
{
    erh_amqp_close(amqp, false);
    pthread_mutex_destroy(&amqp->watch_lock);
}

erh_status erh_amqp_connect(erh_amqp *amqp, const erh_config *config, const erh_server *server, unsigned timeout_ms)
{
    erh_amqp_close(amqp, false);
    amqp->errstr[0] = '\0';
    amqp->last_tag = 0;
    amqp->blocked = false;
    erh_flow_reset(&amqp->writes);
    erh_flow_reset(&amqp->control);
    /* As long as a silent broker takes to be noticed by its missing heartbeats. */
    amqp->stall_ms = config->heartbeat_s > 0 ? config->heartbeat_s * 2000 : config->connect_timeout_ms;
    amqp->close_ms = config->connect_timeout_ms < CLOSE_TIMEOUT_MS ? config->connect_timeout_ms : CLOSE_TIMEOUT_MS;
    amqp->conn = amqp_new_connection();
    if (!amqp->conn)
        return fail(amqp, ERH_ERR_NOMEM, "creating a connection: out of memory");
    erh_status st = open_session(amqp, config, server, timeout_ms);
    if (st != ERH_OK)
        erh_amqp_close(amqp, false);
    return st;
}

/* A write that found no room: try again later, unless the socket has taken nothing for the stall
 * time. While RabbitMQ says it blocks us, it reads nothing on purpose: that is no stall. */
static erh_status no_room(erh_amqp *amqp, const erh_flow *flow)
{
    int64_t stalled = erh_flow_stalled_ms(flow, erh_monotonic_ms());
    if (amqp->blocked || stalled < amqp->stall_ms)
        return ERH_ERR_AGAIN;
    return fail(amqp, ERH_ERR_TIMEOUT, "RabbitMQ took none of the data written for %" PRId64 " ms", stalled);
}

static bool room_for_control(erh_amqp *amqp)
{
    return erh_flow_room_for_control(&amqp->control, amqp_get_sockfd(amqp->conn), erh_monotonic_ms());
}

/* What the frames of a publish take on the wire, near enough for erh_flow (which adds its margin). */
static size_t publish_bytes(const char *exchange, const erh_amqp_message *message)
{
    size_t body_frames = message->body.len / (FRAME_MAX - FRAME_OVERHEAD) + 1;
    return PUBLISH_FIXED_BYTES + 3 * FRAME_OVERHEAD + strlen(exchange) + message->routing_key.len +
           message->message_id.len + strlen(message->type) + message->clientid.len + strlen(message->node) +
           body_frames * FRAME_OVERHEAD + message->body.len;
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
    if (!erh_flow_room(&amqp->writes, amqp_get_sockfd(amqp->conn), publish_bytes(exchange, message),
                       erh_monotonic_ms()))
        return no_room(amqp, &amqp->writes);
    int rc = amqp_basic_publish(amqp->conn, CHANNEL, amqp_cstring_bytes(exchange), to_amqp(message->routing_key),
                                1, 0, &props, to_amqp(message->body));
    if (rc != AMQP_STATUS_OK)
        return fail(amqp, ERH_ERR_SOCKET, "publishing: %s", amqp_error_string2(rc));
    *tag = ++amqp->last_tag;
    return ERH_OK;
}

/* The next frame of a returned message's content. rabbitmq-c's amqp_read_message would wait for
 * it with no deadline; each frame gets the stall time here. */
static erh_status content_frame(erh_amqp *amqp, amqp_channel_t channel, uint8_t type, amqp_frame_t *frame)
{
    struct timeval timeout = ms_to_timeval(amqp->stall_ms);
    int rc = amqp_simple_wait_frame_noblock(amqp->conn, frame, &timeout);
    if (rc != AMQP_STATUS_OK)
        return fail(amqp,
                    rc == AMQP_STATUS_TIMEOUT || rc == AMQP_STATUS_HEARTBEAT_TIMEOUT ? ERH_ERR_TIMEOUT : ERH_ERR_SOCKET,
                    "reading a returned message: %s", amqp_error_string2(rc));
    if (frame->channel != channel || frame->frame_type != type)
        return fail(amqp, ERH_ERR_PROTOCOL, "reading a returned message: frame of type %u on channel %u",
                    frame->frame_type, frame->channel);
    return ERH_OK;
}

/* Copy at most cap bytes of from into out; returns the bytes copied. */
static size_t copy_bytes(char *out, size_t cap, amqp_bytes_t from)
{
    size_t len = from.len < cap ? from.len : cap;
    memcpy(out, from.bytes, len);
    return len;
}

/* A basic.return is followed by the returned message's header and body; read them so the
 * stream stays in step, and report the routing key and message id. */
static erh_status handle_return(erh_amqp *amqp, const amqp_frame_t *frame, const erh_amqp_handler *handler)
{
    const amqp_basic_return_t *ret = frame->payload.method.decoded;
    char routing_key[256], reply_text[256], message_id[256];
    size_t rk_len = copy_bytes(routing_key, sizeof routing_key, ret->routing_key);
    size_t text_len = copy_bytes(reply_text, sizeof reply_text, ret->reply_text);
    size_t id_len = 0;

    amqp_frame_t content;
    erh_status st = content_frame(amqp, frame->channel, AMQP_FRAME_HEADER, &content);
    if (st != ERH_OK)
        return st;
    const amqp_basic_properties_t *props = content.payload.properties.decoded;
    if (props->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        id_len = copy_bytes(message_id, sizeof message_id, props->message_id);
    for (uint64_t left = content.payload.properties.body_size; left > 0;) {
        if ((st = content_frame(amqp, frame->channel, AMQP_FRAME_BODY, &content)) != ERH_OK)
            return st;
        left -= content.payload.body_fragment.len < left ? content.payload.body_fragment.len : left;
    }
    handler->returned(handler->ctx, (erh_bytes){routing_key, rk_len}, (erh_bytes){message_id, id_len},
                      (erh_bytes){reply_text, text_len});
    return ERH_OK;
}

/* connection.blocked or connection.unblocked. A write waiting before a block says nothing about
 * the time after it. While blocked, RabbitMQ keeps its window closed on purpose and still sends
 * heartbeats: the kernel must not end the connection for that. */
static void handle_blocked(erh_amqp *amqp, const amqp_frame_t *frame, const erh_amqp_handler *handler)
{
    bool blocked = frame->payload.method.id == AMQP_CONNECTION_BLOCKED_METHOD;
    erh_bytes reason = {0};
    if (blocked)
        reason = from_amqp(((const amqp_connection_blocked_t *)frame->payload.method.decoded)->reason);
    amqp->blocked = blocked;
    erh_flow_reset(&amqp->writes);
    set_user_timeout(amqp, blocked ? 0 : amqp->stall_ms);
    handler->blocked(handler->ctx, blocked, reason);
}

static erh_status handle_close(erh_amqp *amqp, const amqp_frame_t *frame)
{
    if (frame->payload.method.id == AMQP_CONNECTION_CLOSE_METHOD && room_for_control(amqp)) {
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(amqp->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    }
    amqp_rpc_reply_t reply = {.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION, .reply = frame->payload.method};
    return check_reply(amqp, reply, "publishing");
}

erh_status erh_amqp_service(erh_amqp *amqp, const erh_amqp_handler *handler)
{
    /* rabbitmq-c sends a heartbeat from inside a read when one is due, and would wait for room. */
    if (!room_for_control(amqp)) {
        erh_status st = no_room(amqp, &amqp->control);
        return st == ERH_ERR_AGAIN ? ERH_OK : st;
    }
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
        case AMQP_CONNECTION_BLOCKED_METHOD:
        case AMQP_CONNECTION_UNBLOCKED_METHOD:
            handle_blocked(amqp, &frame, handler);
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

bool erh_amqp_blocked(const erh_amqp *amqp)
{
    return amqp->conn && amqp->blocked;
}

bool erh_amqp_waiting(const erh_amqp *amqp)
{
    return amqp->conn && (erh_flow_waiting(&amqp->writes) || erh_flow_waiting(&amqp->control));
}

int erh_amqp_fd(const erh_amqp *amqp)
{
    return amqp->conn && !erh_flow_waiting(&amqp->control) ? amqp_get_sockfd(amqp->conn) : -1;
}

void erh_amqp_hold(erh_amqp *amqp, bool hold)
{
    int cork = hold;
    if (amqp->conn)
        setsockopt(amqp_get_sockfd(amqp->conn), IPPROTO_TCP, TCP_CORK, &cork, sizeof cork);
}

/* rabbitmq-c sends each close frame with no deadline, then waits for the reply as long as the
 * RPC timeout says (and closes the socket when it passes). */
static void close_politely(erh_amqp *amqp)
{
    struct timeval timeout = ms_to_timeval(amqp->close_ms);
    amqp_set_rpc_timeout(amqp->conn, &timeout);
    amqp_rpc_reply_t reply = amqp_channel_close(amqp->conn, CHANNEL, AMQP_REPLY_SUCCESS);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL && room_for_control(amqp))
        amqp_connection_close(amqp->conn, AMQP_REPLY_SUCCESS);
}

void erh_amqp_close(erh_amqp *amqp, bool polite)
{
    if (!amqp->conn)
        return;
    /* A blocked connection reads nothing: the reply would never come. */
    if (polite && !amqp->blocked && room_for_control(amqp))
        close_politely(amqp);
    watch_socket(amqp, -1);
    amqp_destroy_connection(amqp->conn);
    amqp->conn = NULL;
}

void erh_amqp_interrupt(erh_amqp *amqp)
{
    pthread_mutex_lock(&amqp->watch_lock);
    if (amqp->watch_fd >= 0)
        shutdown(amqp->watch_fd, SHUT_RDWR);
    pthread_mutex_unlock(&amqp->watch_lock);
}
