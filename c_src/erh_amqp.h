/* One AMQP 0-9-1 connection with rabbitmq-c: open, log in, declare the topology, switch the channel
 * to publisher confirms, publish, and read confirms without blocking. Owned by exactly one thread,
 * but for erh_amqp_interrupt.
 *
 * No call waits on the socket without a deadline. rabbitmq-c writes a frame with no deadline (it
 * polls until the kernel took all of it), so a write starts only when the socket's send buffer
 * takes it whole (erh_flow.h); otherwise erh_amqp_publish says ERH_ERR_AGAIN and the caller waits in
 * its own loop. A connection whose socket takes nothing for the stall time (two heartbeat
 * intervals, or connect_timeout_ms with heartbeats off) is given up, and TCP_USER_TIMEOUT ends one
 * that the kernel holds for that long (a closed window counts since Linux 5.11). RabbitMQ says
 * connection.blocked when a memory or disk alarm makes it stop reading from publishers: the
 * connection stays, and the caller publishes nothing until connection.unblocked. */
#ifndef ERH_AMQP_H
#define ERH_AMQP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <amqp.h>

#include "erh_buf.h"
#include "erh_config.h"
#include "erh_flow.h"

typedef struct erh_amqp {
    amqp_connection_state_t conn;
    uint64_t last_tag;   /* delivery tag of the last publish on this channel */
    bool blocked;        /* RabbitMQ sent connection.blocked, and no connection.unblocked since */
    unsigned stall_ms;   /* the socket taking nothing for this long ends the connection */
    unsigned close_ms;   /* how long a polite close waits for the broker's reply */
    erh_flow writes;     /* a publish waiting for room */
    erh_flow control;    /* a heartbeat or close frame waiting for room */
    pthread_mutex_t watch_lock;
    int watch_fd;        /* a duplicate of the socket for erh_amqp_interrupt, -1 without one */
    char errstr[256];    /* what went wrong, for the log; never holds a password */
} erh_amqp;

/* What one publish carries besides the exchange. */
typedef struct erh_amqp_message {
    erh_bytes routing_key;
    erh_bytes message_id;
    const char *type;      /* event name, e.g. "client.connected" */
    int64_t timestamp_s;
    erh_bytes clientid;    /* header "clientid" */
    const char *node;      /* header "node" */
    erh_bytes body;        /* JSON */
} erh_amqp_message;

/* Confirms and returns read from the broker. */
typedef struct erh_amqp_handler {
    void (*ack)(void *ctx, uint64_t tag, bool multiple);
    void (*nack)(void *ctx, uint64_t tag, bool multiple);
    void (*returned)(void *ctx, erh_bytes routing_key, erh_bytes message_id, erh_bytes reply_text);
    /* connection.blocked (blocked, with RabbitMQ's reason) or connection.unblocked. */
    void (*blocked)(void *ctx, bool blocked, erh_bytes reason);
    void *ctx;
} erh_amqp_handler;

/* A closed connection; call once before any other function. */
void erh_amqp_init(erh_amqp *amqp);
/* Close and free what erh_amqp_init made; no other thread may use amqp any more. */
void erh_amqp_destroy(erh_amqp *amqp);

/* Connect to server, log in, open channel 1, declare exchange, queues and bindings, and select
 * confirms; each step waits at most timeout_ms. On failure the connection is closed and errstr
 * says why. */
erh_status erh_amqp_connect(erh_amqp *amqp, const erh_config *config, const erh_server *server, unsigned timeout_ms);

/* Publish persistent and mandatory; on success *tag is the delivery tag its confirm will carry.
 * ERH_ERR_AGAIN when the socket cannot take the message whole now (nothing was written: try again
 * later), ERH_ERR_TIMEOUT when it has taken nothing for the stall time. */
erh_status erh_amqp_publish(erh_amqp *amqp, const char *exchange, const erh_amqp_message *message,
                            uint64_t *tag);

/* Read every frame already available, without waiting, and hand confirms, returns and blocked or
 * unblocked to handler. Also sends heartbeats when due and notices a peer that stopped sending them.
 * Reads nothing while the socket has no room for a heartbeat (rabbitmq-c would wait to send one). */
erh_status erh_amqp_service(erh_amqp *amqp, const erh_amqp_handler *handler);

/* RabbitMQ blocks publishing on this connection (connection.blocked). */
bool erh_amqp_blocked(const erh_amqp *amqp);

/* A publish, or a read (which may send a heartbeat), waits for room in the socket's send buffer:
 * look again soon, as poll() does not say when there is enough. */
bool erh_amqp_waiting(const erh_amqp *amqp);

/* The socket to poll() for readability, or -1 when not connected or when erh_amqp_service could
 * not read now (no room for a heartbeat). */
int erh_amqp_fd(const erh_amqp *amqp);

/* Hold (true) while publishing a run of messages, release (false) after it: rabbitmq-c writes
 * each frame with its own send(), and held, the kernel packs them into full segments instead of
 * one packet per message, which saves the broker and this thread most of the per-packet work. */
void erh_amqp_hold(erh_amqp *amqp, bool hold);

/* Close politely when possible and free the connection; safe when not connected. A polite close
 * happens only when RabbitMQ reads (not blocked) and the socket has room for the frames; it waits
 * at most close_ms for the reply. */
void erh_amqp_close(erh_amqp *amqp, bool polite);

/* From any thread: make every wait of the owning thread on this connection's socket end at once,
 * with an error (shutdown(2) of the socket). Used by stop when a publisher outlives its deadline. */
void erh_amqp_interrupt(erh_amqp *amqp);

#endif
