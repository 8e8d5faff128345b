/* One AMQP 0-9-1 connection with rabbitmq-c: open, log in, declare the topology, switch the channel
 * to publisher confirms, publish, and read confirms without blocking. Owned by exactly one thread. */
#ifndef ERH_AMQP_H
#define ERH_AMQP_H

#include <stdbool.h>
#include <stdint.h>

#include <amqp.h>

#include "erh_buf.h"
#include "erh_config.h"

typedef struct erh_amqp {
    amqp_connection_state_t conn;
    uint64_t last_tag;   /* delivery tag of the last publish on this channel */
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
    void *ctx;
} erh_amqp_handler;

/* Connect to server, log in, open channel 1, declare exchange, queues and bindings, and select
 * confirms. On failure the connection is closed and errstr says why. */
erh_status erh_amqp_connect(erh_amqp *amqp, const erh_config *config, const erh_server *server);

/* Publish persistent and mandatory; on success *tag is the delivery tag its confirm will carry. */
erh_status erh_amqp_publish(erh_amqp *amqp, const char *exchange, const erh_amqp_message *message,
                            uint64_t *tag);

/* Read every frame already available, without waiting, and hand confirms and returns to handler.
 * Also sends heartbeats when due and notices a peer that stopped sending them. */
erh_status erh_amqp_service(erh_amqp *amqp, const erh_amqp_handler *handler);

/* The socket to poll() for readability, or -1 when not connected. */
int erh_amqp_fd(const erh_amqp *amqp);

/* Hold (true) while publishing a run of messages, release (false) after it: rabbitmq-c writes
 * each frame with its own send(), and held, the kernel packs them into full segments instead of
 * one packet per message, which saves the broker and this thread most of the per-packet work. */
void erh_amqp_hold(erh_amqp *amqp, bool hold);

/* Close politely when possible and free the connection; safe when not connected. */
void erh_amqp_close(erh_amqp *amqp, bool polite);

#endif
