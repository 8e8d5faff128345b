/* Room in a TCP socket's send buffer, and how long a writer has waited for it.
 *
 * rabbitmq-c 0.11 keeps its socket non-blocking, but when the kernel takes only part of a frame it
 * waits in poll() for the rest with no deadline (SO_SNDTIMEO does not apply to poll). A broker that
 * stops reading would hold the writer there for good. So a write starts only when the kernel takes
 * all of it at once, and a writer that has to wait does so in its own loop, which sees how long the
 * socket has taken nothing. Builds without the VM and rabbitmq-c; owned by one thread. */
#ifndef ERH_FLOW_H
#define ERH_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct erh_flow {
    int64_t waiting_since_ms; /* when the wait for room began or last saw the queue shrink; 0: none */
    uint64_t waiting_queued;  /* bytes the socket held at the last check of that wait */
    uint64_t known_room;      /* bytes the socket surely takes: free at the last look, less writes since */
    int64_t known_at_ms;      /* when that look was */
} erh_flow;

/* True when a write of bytes to fd goes into the kernel whole now, leaving a reserve for control
 * frames. An empty socket takes any write, so that a message larger than the whole buffer can go
 * at all. False starts a wait, or continues it. */
bool erh_flow_room(erh_flow *flow, int fd, size_t bytes, int64_t now_ms);

/* The same for a control frame (heartbeat, close): it may use the reserve. */
bool erh_flow_room_for_control(erh_flow *flow, int fd, int64_t now_ms);

/* A write waits for room: the last check found none. */
bool erh_flow_waiting(const erh_flow *flow);

/* How long, in ms, the current wait has seen the socket take nothing; 0 when no write waits. */
int64_t erh_flow_stalled_ms(const erh_flow *flow, int64_t now_ms);

/* No write waits (a new connection, or one that will not write for a while). */
void erh_flow_reset(erh_flow *flow);

#endif
