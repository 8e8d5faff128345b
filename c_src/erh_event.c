#include "erh_event.h"

#include <stdlib.h>
#include <string.h>

erh_event *erh_event_new(const erh_event *proto)
{
    const erh_bytes *field = proto->field;
    size_t total = 0;
    for (int i = 0; i < ERH_F__COUNT; i++) {
        if (field[i].len > SIZE_MAX - total - 1)
            return NULL;
        total += field[i].len + 1; /* keep a NUL after each field for C-string consumers */
    }
    if (total > SIZE_MAX - sizeof(erh_event))
        return NULL;
    erh_event *event = malloc(sizeof(erh_event) + total);
    if (!event)
        return NULL;
    *event = *proto;
    event->next = NULL;
    char *at = event->storage;
    for (int i = 0; i < ERH_F__COUNT; i++) {
        if (!field[i].data) {
            event->field[i] = (erh_bytes){0};
            continue;
        }
        if (field[i].len)
            memcpy(at, field[i].data, field[i].len);
        at[field[i].len] = '\0';
        event->field[i].data = at;
        event->field[i].len = field[i].len;
        at += field[i].len + 1;
    }
    return event;
}

void erh_event_free(erh_event *event)
{
    free(event);
}

size_t erh_event_list_free(erh_event *head)
{
    size_t n = 0;
    while (head) {
        erh_event *next = head->next;
        free(head);
        head = next;
        n++;
    }
    return n;
}

const char *erh_event_name(erh_event_type type)
{
    switch (type) {
    case ERH_EV_CONNECTED:
        return "client.connected";
    case ERH_EV_DISCONNECTED:
        return "client.disconnected";
    case ERH_EV_PUBLISH:
        return "message.publish";
    default:
        return "unknown";
    }
}

const char *erh_event_action(erh_event_type type)
{
    switch (type) {
    case ERH_EV_CONNECTED:
        return "client_connected";
    case ERH_EV_DISCONNECTED:
        return "client_disconnected";
    case ERH_EV_PUBLISH:
        return "message_publish";
    default:
        return "unknown";
    }
}
