#include "erh_flow.h"

#include <linux/sock_diag.h>
#include <sys/socket.h>

/* Kept free by data writes: a heartbeat or the frames of a polite close always fit in it. */
#define RESERVE_BYTES 4096
/* What a control frame asks for: the kernel takes a small write whenever its queue is under the limit. */
#define CONTROL_BYTES 1024
/* A look at the queue serves the writes that fit in what it found free for this long: one system
 * call per many publishes. The queue only shrinks meanwhile (the broker reads), so it stays safe. */
#define LOOK_AGAIN_MS 10

/* The kernel's own accounting of fd's send queue: what it holds and what it may hold, both with
 * its per-packet bookkeeping. False when fd is not a socket it can say this about. */
static bool send_queue(int fd, uint64_t *queued, uint64_t *limit)
{
    uint32_t info[SK_MEMINFO_VARS];
    socklen_t len = sizeof info;
    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, &len) != 0 || len < sizeof info)
        return false;
    *queued = info[SK_MEMINFO_WMEM_QUEUED];
    *limit = info[SK_MEMINFO_SNDBUF];
    return true;
}

/* A wait goes on; its clock starts again whenever the queue shrank, as the broker then takes data. */
static void note_wait(erh_flow *flow, uint64_t queued, int64_t now_ms)
{
    if (!erh_flow_waiting(flow) || queued < flow->waiting_queued)
        flow->waiting_since_ms = now_ms > 0 ? now_ms : 1;
    flow->waiting_queued = queued;
}

/* needed: the room a write asks for; used: what it takes of it (needed less any reserve kept). */
static bool check(erh_flow *flow, int fd, uint64_t needed, uint64_t used, int64_t now_ms)
{
    if (!erh_flow_waiting(flow) && now_ms - flow->known_at_ms < LOOK_AGAIN_MS && needed <= flow->known_room) {
        flow->known_room -= used;
        return true;
    }
    uint64_t queued, limit;
    bool known = send_queue(fd, &queued, &limit);
    /* A socket that cannot say is broken or gone: the write fails at once rather than waits. An
     * empty one takes any write, or a message larger than the whole buffer could never go. */
    if (!known || queued == 0 || queued + needed <= limit) {
        erh_flow_reset(flow);
        if (known && queued + needed <= limit) {
            flow->known_room = limit - queued - used;
            flow->known_at_ms = now_ms;
        }
        return true;
    }
    note_wait(flow, queued, now_ms);
    return false;
}

bool erh_flow_room(erh_flow *flow, int fd, size_t bytes, int64_t now_ms)
{
    /* Half as much again: the kernel counts its bookkeeping per packet (up to a third more than
     * the data with small segments, measured) and TLS adds a header and a tag per record. */
    uint64_t used = (uint64_t)bytes + bytes / 2;
    return check(flow, fd, used + RESERVE_BYTES, used, now_ms);
}

bool erh_flow_room_for_control(erh_flow *flow, int fd, int64_t now_ms)
{
    return check(flow, fd, CONTROL_BYTES, CONTROL_BYTES, now_ms);
}

bool erh_flow_waiting(const erh_flow *flow)
{
    return flow->waiting_since_ms != 0;
}

int64_t erh_flow_stalled_ms(const erh_flow *flow, int64_t now_ms)
{
    return erh_flow_waiting(flow) ? now_ms - flow->waiting_since_ms : 0;
}

void erh_flow_reset(erh_flow *flow)
{
    *flow = (erh_flow){0};
}
