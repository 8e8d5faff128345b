/* A bounded FIFO of events between many producers (scheduler threads in submit) and one consumer
 * (a publisher thread). The consumer sleeps in poll() on wake_fd; producers write to it only
 * when the consumer said it is going to sleep, so a busy pipeline makes no system call per event. */
#ifndef ERH_QUEUE_H
#define ERH_QUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "erh_event.h"
#include "erh_status.h"

typedef struct erh_queue {
    pthread_mutex_t lock;
    erh_event *head;
    erh_event *tail;
    size_t count;
    size_t capacity;
    atomic_bool full; /* count >= capacity, for producers that look without the lock */
    size_t high_water; /* a push that reaches it wakes the consumer even when busy; 0: none */
    bool consumer_asleep;
    bool lock_ready;
    int wake_fd; /* eventfd, readable when the consumer must look again */
} erh_queue;

erh_status erh_queue_init(erh_queue *queue, size_t capacity, size_t high_water);
/* Free the queue and every event still in it; safe on a zeroed or half-built queue. */
void erh_queue_destroy(erh_queue *queue);

/* Append event; ERH_ERR_FULL (event not taken) when count == capacity. */
erh_status erh_queue_push(erh_queue *queue, erh_event *event);

/* Consumer: detach up to max events from the head, in order, as a NULL-terminated list; *taken
 * says how many. */
erh_event *erh_queue_pop(erh_queue *queue, size_t max, size_t *taken);

/* Consumer: put a list it popped and could not use back in front, in order. The queue may then
 * hold more than its capacity, by at most that list, until the consumer takes from it again. */
void erh_queue_push_front(erh_queue *queue, erh_event *list);

/* Consumer: returns true when the queue is empty and the consumer may sleep on wake_fd;
 * the next push will then wake it. */
bool erh_queue_prepare_sleep(erh_queue *queue);
/* Consumer: forget wake-ups already signalled (call after poll() returns). */
void erh_queue_clear_wake(erh_queue *queue);
/* Wake the consumer whatever the queue holds (used by stop). */
void erh_queue_wake(erh_queue *queue);

size_t erh_queue_count(erh_queue *queue);
/* Without the lock: true when the queue was full a moment ago. A producer then need not build an
 * event the push would refuse; a push may still refuse one built while this said false. */
bool erh_queue_looks_full(erh_queue *queue);

#endif
