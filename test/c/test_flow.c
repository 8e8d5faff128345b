#include "check_run.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "erh_flow.h"

/* A loopback TCP connection whose reading end reads only when the test says: the writer's end is
 * non-blocking, as rabbitmq-c's is. A small segment size makes the kernel's bookkeeping per byte
 * large, as on a real network. */
typedef struct pair {
    int writer;
    int reader;
} pair;

static pair open_pair(int segment_bytes)
{
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    ck_assert_int_eq(bind(listener, (struct sockaddr *)&addr, sizeof addr), 0);
    ck_assert_int_eq(listen(listener, 1), 0);
    ck_assert_int_eq(getsockname(listener, (struct sockaddr *)&addr, &len), 0);
    pair p = {.writer = socket(AF_INET, SOCK_STREAM, 0)};
    int one = 1;
    setsockopt(p.writer, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (segment_bytes)
        ck_assert_int_eq(setsockopt(p.writer, IPPROTO_TCP, TCP_MAXSEG, &segment_bytes, sizeof segment_bytes), 0);
    ck_assert_int_eq(connect(p.writer, (struct sockaddr *)&addr, sizeof addr), 0);
    p.reader = accept(listener, NULL, NULL);
    ck_assert_int_ge(p.reader, 0);
    close(listener);
    fcntl(p.writer, F_SETFL, fcntl(p.writer, F_GETFL) | O_NONBLOCK);
    return p;
}

static void close_pair(pair p)
{
    close(p.writer);
    close(p.reader);
}

static void pause_ms(long ms)
{
    struct timespec wait = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&wait, NULL);
}

/* Write messages of size bytes while the flow says they fit; each must go into the kernel whole.
 * Returns how many went. */
static size_t write_while_room(erh_flow *flow, pair p, size_t size)
{
    char *message = calloc(1, size);
    size_t sent = 0;
    for (; sent < 1000000 && erh_flow_room(flow, p.writer, size, 1000); sent++) {
        ssize_t n = send(p.writer, message, size, MSG_DONTWAIT | MSG_NOSIGNAL);
        ck_assert_msg(n == (ssize_t)size, "message %zu of %zu bytes: the kernel took %zd (errno %d)", sent, size, n,
                      errno);
        pause_ms(0); /* let loopback acknowledge, as a network would in between */
    }
    free(message);
    return sent;
}

/* The reading end takes up to bytes of what waits; the writer's queue shrinks once the acks are in. */
static void read_some(pair p, size_t bytes)
{
    char buf[4096];
    ssize_t n;
    pause_ms(20);
    while (bytes > 0 && (n = recv(p.reader, buf, bytes < sizeof buf ? bytes : sizeof buf, MSG_DONTWAIT)) > 0)
        bytes -= (size_t)n;
    pause_ms(20);
}

static void writes_that_fit_never_wait_for(size_t size, int segment_bytes)
{
    pair p = open_pair(segment_bytes);
    erh_flow flow = {0};
    size_t sent = write_while_room(&flow, p, size);
    ck_assert_uint_gt(sent, 0);
    ck_assert_uint_lt(sent, 1000000);
    /* The reserve is left: a heartbeat still goes whole. */
    ck_assert(erh_flow_room_for_control(&flow, p.writer, 1000));
    ck_assert_int_eq(send(p.writer, "\x08\0\0\0\0\0\0\xce", 8, MSG_DONTWAIT | MSG_NOSIGNAL), 8);
    close_pair(p);
}

START_TEST(small_writes_that_fit_never_wait)
{
    writes_that_fit_never_wait_for(300, 536);
}
END_TEST

START_TEST(medium_writes_that_fit_never_wait)
{
    writes_that_fit_never_wait_for(3000, 1400);
}
END_TEST

START_TEST(large_writes_that_fit_never_wait)
{
    writes_that_fit_never_wait_for(65536, 1400);
    writes_that_fit_never_wait_for(65536, 0);
}
END_TEST

/* Write until the kernel takes no more, as a writer that ignores the room would. */
static void fill(pair p)
{
    char message[3000] = {0};
    while (send(p.writer, message, sizeof message, MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
        pause_ms(0);
}

START_TEST(a_wait_counts_only_the_time_the_socket_takes_nothing)
{
    pair p = open_pair(1400);
    erh_flow flow = {0};
    fill(p);
    /* A write larger than the buffer waits until the socket is empty. */
    size_t large = 1u << 20;
    ck_assert(!erh_flow_room(&flow, p.writer, large, 1000));
    ck_assert(!erh_flow_room(&flow, p.writer, large, 1500));
    ck_assert_int_eq(erh_flow_stalled_ms(&flow, 1700), 700);
    /* The broker reads a little: the queue shrinks, so the wait starts again. */
    read_some(p, 1000);
    ck_assert(!erh_flow_room(&flow, p.writer, large, 2000));
    ck_assert_int_eq(erh_flow_stalled_ms(&flow, 2100), 100);
    /* It reads everything: the write fits and the wait ends. */
    read_some(p, SIZE_MAX);
    ck_assert(erh_flow_room(&flow, p.writer, large, 3000));
    ck_assert_int_eq(erh_flow_stalled_ms(&flow, 4000), 0);
    close_pair(p);
}
END_TEST

/* One look at the queue serves the writes that fit in what it found free, for 10 ms: the flow's
 * owner is the socket's only writer, so the queue can only have shrunk since. Here the test writes
 * behind its back to show that the look is not repeated, then that it is once the time is up. */
START_TEST(a_look_serves_the_writes_after_it_for_a_moment)
{
    pair p = open_pair(0);
    erh_flow flow = {0};
    ck_assert(erh_flow_room(&flow, p.writer, 100, 1000));
    fill(p);
    ck_assert(erh_flow_room(&flow, p.writer, 100, 1009));
    ck_assert(!erh_flow_room(&flow, p.writer, 100, 1010));
    close_pair(p);
}
END_TEST

START_TEST(an_empty_socket_takes_a_write_larger_than_its_buffer)
{
    pair p = open_pair(1400);
    erh_flow flow = {0};
    ck_assert(erh_flow_room(&flow, p.writer, 100u << 20, 1000));
    close_pair(p);
}
END_TEST

START_TEST(a_descriptor_that_is_no_socket_holds_no_writer)
{
    erh_flow flow = {0};
    ck_assert(erh_flow_room(&flow, -1, 1000, 1000));
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert(erh_flow_room_for_control(&flow, fds[1], 1000));
    ck_assert_int_eq(erh_flow_stalled_ms(&flow, 2000), 0);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, small_writes_that_fit_never_wait);
    tcase_add_test(tc, medium_writes_that_fit_never_wait);
    tcase_add_test(tc, large_writes_that_fit_never_wait);
    tcase_add_test(tc, a_wait_counts_only_the_time_the_socket_takes_nothing);
    tcase_add_test(tc, a_look_serves_the_writes_after_it_for_a_moment);
    tcase_add_test(tc, an_empty_socket_takes_a_write_larger_than_its_buffer);
    tcase_add_test(tc, a_descriptor_that_is_no_socket_holds_no_writer);
}

int main(void)
{
    return check_run("flow", add_tests);
}
