#include "erh_spool_regroup.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARKER "PUBLISHERS"
#define STAGING "regroup"
#define INDEX_DIGITS_MAX 9

typedef struct regroup {
    unsigned publishers;
    erh_spool *targets; /* one per publisher, locked and open */
    unsigned n_targets;
    erh_regroup_result *result;
    char *errstr;
    size_t errstr_len;
} regroup;

/* Numbered folders, in order. */
typedef struct folder_list {
    long *index;
    size_t count;
} folder_list;

static erh_status fail(regroup *r, erh_status status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(r->errstr, r->errstr_len, fmt, args);
    va_end(args);
    return status;
}

/* A spool's own words for its failure. */
static erh_status spool_failed(regroup *r, erh_status status, const erh_spool *spool)
{
    return fail(r, status, "%s", spool->errstr[0] ? spool->errstr : erh_strerror(status));
}

static erh_status numbered_path(regroup *r, char out[PATH_MAX], const char *dir, long index)
{
    int len = snprintf(out, PATH_MAX, "%s/%ld", dir, index);
    return len > 0 && len < PATH_MAX ? ERH_OK : fail(r, ERH_ERR_TOO_LONG, "spool path too long: %s", dir);
}

/* The number a folder's name spells ("0", "12"), or -1. */
static long folder_index(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > INDEX_DIGITS_MAX)
        return -1;
    long index = 0;
    for (size_t i = 0; i < len; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        index = index * 10 + (name[i] - '0');
    }
    return index;
}

static int compare_index(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

/* The numbered folders of dir that hold segments; none when dir does not exist. */
static erh_status list_folders(regroup *r, const char *dir, folder_list *list)
{
    *list = (folder_list){0};
    DIR *listing = opendir(dir);
    if (!listing)
        return errno == ENOENT ? ERH_OK : fail(r, ERH_ERR_SYSTEM, "cannot list %s: %s", dir, strerror(errno));
    size_t cap = 0;
    erh_status st = ERH_OK;
    for (struct dirent *entry; st == ERH_OK && (entry = readdir(listing));) {
        long index = folder_index(entry->d_name);
        char path[PATH_MAX];
        if (index < 0 || numbered_path(r, path, dir, index) != ERH_OK || !erh_spool_holds_segments(path))
            continue;
        if (list->count == cap) {
            cap = cap ? cap * 2 : 16;
            long *grown = realloc(list->index, cap * sizeof *grown);
            if (!grown) {
                st = fail(r, ERH_ERR_NOMEM, "out of memory");
                break;
            }
            list->index = grown;
        }
        list->index[list->count++] = index;
    }
    closedir(listing);
    if (list->count > 1)
        qsort(list->index, list->count, sizeof *list->index, compare_index);
    return st;
}

/* The count dir's folders were written for; 0 when unknown (written before PUBLISHERS existed). */
static unsigned written_for(const char *dir)
{
    char path[PATH_MAX];
    unsigned publishers = 0;
    if (snprintf(path, sizeof path, "%s/" MARKER, dir) >= (int)sizeof path)
        return 0;
    FILE *file = fopen(path, "re");
    if (!file)
        return 0;
    if (fscanf(file, "%u", &publishers) != 1)
        publishers = 0;
    fclose(file);
    return publishers;
}

static erh_status mark(regroup *r, const char *dir)
{
    char text[16];
    snprintf(text, sizeof text, "%u\n", r->publishers);
    erh_status st = erh_spool_make_dirs(dir, r->errstr, r->errstr_len);
    return st == ERH_OK ? erh_spool_write_file(dir, MARKER, text, true, r->errstr, r->errstr_len) : st;
}

static bool same_folder(const char *a, const char *b)
{
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* Move dir's folders in own to staging, numbered after those already there. Each is locked first:
 * a folder another instance uses is not taken from it. */
static erh_status stage(regroup *r, const char *dir, const folder_list *own, const char *staging,
                        const folder_list *staged)
{
    long next = staged->count ? staged->index[staged->count - 1] + 1 : 0;
    erh_status st = erh_spool_make_dirs(staging, r->errstr, r->errstr_len);
    for (size_t i = 0; st == ERH_OK && i < own->count; i++) {
        char from[PATH_MAX], to[PATH_MAX];
        erh_spool spool = {.lock_fd = -1};
        st = numbered_path(r, from, dir, own->index[i]);
        if (st == ERH_OK)
            st = numbered_path(r, to, staging, next++);
        if (st == ERH_OK &&
            ((st = erh_spool_lock(&spool, from)) != ERH_OK || (st = erh_spool_move(&spool, to)) != ERH_OK))
            spool_failed(r, st, &spool);
        erh_spool_close(&spool, NULL); /* never opened: writes nothing */
    }
    return st;
}

static erh_status open_targets(regroup *r, const char *dir, const erh_spool_options *options)
{
    /* Unbounded: what was on disk stays there. Synced once per folder read (erh_spool_flush), whatever
     * spool_sync says, as that folder is deleted next. */
    erh_spool_options unbounded = *options;
    unbounded.max_bytes = UINT64_MAX;
    unbounded.sync = ERH_SPOOL_SYNC_INTERVAL;
    r->targets = calloc(r->publishers, sizeof *r->targets);
    if (!r->targets)
        return fail(r, ERH_ERR_NOMEM, "out of memory");
    erh_status st = ERH_OK;
    while (st == ERH_OK && r->n_targets < r->publishers) {
        char path[PATH_MAX];
        erh_spool *target = &r->targets[r->n_targets];
        *target = (erh_spool){.lock_fd = -1};
        st = numbered_path(r, path, dir, r->n_targets);
        if (st != ERH_OK)
            break;
        r->n_targets++;
        if ((st = erh_spool_lock(target, path)) != ERH_OK || (st = erh_spool_open(target, &unbounded)) != ERH_OK)
            spool_failed(r, st, target);
        r->result->cut += target->cut;
    }
    return st;
}

static erh_status close_targets(regroup *r, erh_status st)
{
    for (unsigned i = 0; i < r->n_targets; i++) {
        erh_status closed = erh_spool_close(&r->targets[i], NULL);
        if (st == ERH_OK && closed != ERH_OK)
            st = spool_failed(r, closed, &r->targets[i]);
    }
    free(r->targets);
    return st;
}

/* Append every event of source to the spool of the publisher its client goes to now. *first: where
 * the first one read was, for a source left in place. */
static erh_status copy_events(regroup *r, erh_spool *source, erh_spool_pos *first, bool *read_any)
{
    for (;;) {
        erh_event *event;
        erh_spool_pos pos;
        erh_status st = erh_spool_read(source, &event, &pos);
        if (st != ERH_OK)
            return spool_failed(r, st, source);
        if (!event)
            return ERH_OK;
        if (!*read_any)
            *first = pos;
        *read_any = true;
        erh_spool *target = &r->targets[erh_event_publisher_of(event->field[ERH_F_CLIENTID], r->publishers)];
        st = erh_spool_append(target, event, false, &pos);
        erh_event_free(event);
        if (st != ERH_OK)
            return spool_failed(r, st, target);
        r->result->events++;
    }
}

/* Take in the spool folder at path: its events go to their publishers' spools, which are synced
 * before the folder is deleted. On failure it stays as it was. */
static erh_status take_in(regroup *r, const char *path)
{
    const erh_spool_options reading = {
        .max_bytes = UINT64_MAX, .segment_bytes = UINT64_MAX, .sync = ERH_SPOOL_SYNC_NEVER};
    erh_spool source;
    erh_spool_pos first;
    bool read_any = false;
    erh_status st = erh_spool_lock(&source, path);
    if (st == ERH_OK)
        st = erh_spool_open(&source, &reading);
    if (st != ERH_OK)
        spool_failed(r, st, &source);
    else
        st = copy_events(r, &source, &first, &read_any);
    r->result->cut += source.cut;
    for (unsigned i = 0; st == ERH_OK && i < r->n_targets; i++)
        if ((st = erh_spool_flush(&r->targets[i])) != ERH_OK)
            spool_failed(r, st, &r->targets[i]);
    if (st != ERH_OK) {
        erh_spool_close(&source, read_any ? &first : NULL);
        return st;
    }
    r->result->folders++;
    return (st = erh_spool_remove(&source)) == ERH_OK ? ERH_OK : spool_failed(r, st, &source);
}

static erh_status take_in_all(regroup *r, const char *dir, const folder_list *folders)
{
    erh_status st = ERH_OK;
    for (size_t i = 0; st == ERH_OK && i < folders->count; i++) {
        char path[PATH_MAX];
        st = numbered_path(r, path, dir, folders->index[i]);
        if (st == ERH_OK)
            st = take_in(r, path);
    }
    return st;
}

erh_status erh_spool_regroup(const char *dir, const char *previous_dir, unsigned publishers,
                             const erh_spool_options *options, erh_regroup_result *result, char *errstr,
                             size_t errstr_len)
{
    *result = (erh_regroup_result){0};
    regroup r = {.publishers = publishers, .result = result, .errstr = errstr, .errstr_len = errstr_len};
    char staging[PATH_MAX];
    folder_list own = {0}, staged = {0}, previous = {0};
    erh_status st = snprintf(staging, sizeof staging, "%s/" STAGING, dir) < (int)sizeof staging
                        ? ERH_OK
                        : fail(&r, ERH_ERR_TOO_LONG, "spool path too long: %s", dir);
    if (st == ERH_OK)
        st = list_folders(&r, dir, &own);
    if (st == ERH_OK)
        st = list_folders(&r, staging, &staged);
    if (st == ERH_OK && previous_dir && !same_folder(dir, previous_dir))
        st = list_folders(&r, previous_dir, &previous);
    unsigned marked = written_for(dir);
    /* Folders written for another count move aside, all of them: a regroup that a crash cut short
     * (staging not empty) left some of its events in the numbered folders. */
    bool restage = own.count > 0 && (staged.count > 0 || own.index[own.count - 1] >= (long)publishers ||
                                     (marked != 0 && marked != publishers));
    if (st == ERH_OK && restage) {
        st = stage(&r, dir, &own, staging, &staged);
        free(staged.index);
        if (st == ERH_OK)
            st = list_folders(&r, staging, &staged);
    }
    if (st == ERH_OK && (staged.count > 0 || previous.count > 0)) {
        st = open_targets(&r, dir, options);
        if (st == ERH_OK)
            st = take_in_all(&r, staging, &staged);
        if (st == ERH_OK)
            st = take_in_all(&r, previous_dir, &previous);
        st = close_targets(&r, st);
        if (st == ERH_OK)
            rmdir(staging); /* folders without segments may stay in it: they hold nothing to send */
    }
    if (st == ERH_OK && marked != publishers)
        st = mark(&r, dir);
    free(own.index);
    free(staged.index);
    free(previous.index);
    return st;
}
