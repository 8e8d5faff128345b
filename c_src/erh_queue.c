#include "erh_queue.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Under the lock: every change of count goes through here, so full follows it. */
static void set_count(erh_queue *queue, size_t count)
{
    queue->count = count;
    bool full = count >= queue->capacity;
    if (atomic_load_explicit(&queue->full, memory_order_relaxed) != full)
        atomic_store_explicit(&queue->full, full, memory_order_relaxed);
}

erh_status erh_queue_init(erh_queue *queue, size_t capacity, size_t high_water)
{
    *queue = (erh_queue){.capacity = capacity, .high_water = high_water, .wake_fd = -1};
    if (pthread_mutex_init(&queue->lock, NULL) != 0)
        return ERH_ERR_SYSTEM;
    queue->lock_ready = true;
    queue->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return queue->wake_fd < 0 ? ERH_ERR_SYSTEM : ERH_OK;
}

void erh_queue_destroy(erh_queue *queue)
{
    erh_event_list_free(queue->head);
    if (queue->wake_fd >= 0)
        close(queue->wake_fd);
    if (queue->lock_ready)
        pthread_mutex_destroy(&queue->lock);
    *queue = (erh_queue){.wake_fd = -1};
}

erh_status erh_queue_push(erh_queue *queue, erh_event *event)
{
    bool wake = false;
    event->next = NULL;
    pthread_mutex_lock(&queue->lock);
    if (queue->count >= queue->capacity) {
        pthread_mutex_unlock(&queue->lock);
        return ERH_ERR_FULL;
    }
    if (queue->tail)
        queue->tail->next = event;
    else
        queue->head = event;
    queue->tail = event;
    set_count(queue, queue->count + 1);
    if (queue->consumer_asleep || queue->count == queue->high_water) {
        queue->consumer_asleep = false;
        wake = true;
    }
    pthread_mutex_unlock(&queue->lock);
    if (wake)
        erh_queue_wake(queue);
    return ERH_OK;
}

/* Hook calls must never wait while the consumer walks a long list, so the lock is held only to
 * read and to cut. Only the consumer unlinks events, and producers only link new ones after the
 * tail: every link before the tail stays as it is while the lock is released. */
erh_event *erh_queue_pop(erh_queue *queue, size_t max, size_t *taken)
{
    pthread_mutex_lock(&queue->lock);
    erh_event *first = queue->head;
    size_t count = queue->count;
    size_t n = count < max ? count : max;
    if (n == count) {
        queue->head = queue->tail = NULL;
        set_count(queue, 0);
    }
    pthread_mutex_unlock(&queue->lock);
    *taken = n;
    if (n == count || n == 0)
        return n ? first : NULL;

    erh_event *last = first;
    for (size_t i = 1; i < n; i++)
        last = last->next;
    pthread_mutex_lock(&queue->lock);
    queue->head = last->next; /* n < count: last is not the tail */
    set_count(queue, queue->count - n);
    pthread_mutex_unlock(&queue->lock);
    last->next = NULL;
    return first;
}

void erh_queue_push_front(erh_queue *queue, erh_event *list)
{
    if (!list)
        return;
    size_t n = 1;
    erh_event *last = list;
    for (; last->next; last = last->next)
        n++;
    pthread_mutex_lock(&queue->lock);
    last->next = queue->head;
    queue->head = list;
    if (!queue->tail)
        queue->tail = last;
    set_count(queue, queue->count + n);
    pthread_mutex_unlock(&queue->lock);
}

bool erh_queue_prepare_sleep(erh_queue *queue)
{
    pthread_mutex_lock(&queue->lock);
    bool empty = queue->count == 0;
    queue->consumer_asleep = empty;
    pthread_mutex_unlock(&queue->lock);
    return empty;
}

void erh_queue_clear_wake(erh_queue *queue)
{
    uint64_t value;
    while (read(queue->wake_fd, &value, sizeof value) < 0 && errno == EINTR)
        ;
}

void erh_queue_wake(erh_queue *queue)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the consumer will wake anyway. */
    while (write(queue->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

size_t erh_queue_count(erh_queue *queue)
{
    pthread_mutex_lock(&queue->lock);
    size_t count = queue->count;
    pthread_mutex_unlock(&queue->lock);
    return count;
}

bool erh_queue_looks_full(erh_queue *queue)
{
    return atomic_load_explicit(&queue->full, memory_order_relaxed);
}
