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
#define READING "READING" /* in staging: the previous spool_dir being read where it is */
#define INDEX_DIGITS_MAX 9
#define STAGED_MAX 999999999L /* the largest number of INDEX_DIGITS_MAX digits */

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

/* After a failed opendir: the folder is not there (or a file is where it would be), so it holds
 * nothing. */
static bool absent(void)
{
    return errno == ENOENT || errno == ENOTDIR;
}

/* The numbered folders of dir that hold segments; none when dir does not exist. */
static erh_status list_folders(regroup *r, const char *dir, folder_list *list)
{
    *list = (folder_list){0};
    DIR *listing = opendir(dir);
    if (!listing)
        return absent() ? ERH_OK : fail(r, ERH_ERR_SYSTEM, "cannot list %s: %s", dir, strerror(errno));
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
    return erh_spool_write_file(dir, MARKER, text, true, r->errstr, r->errstr_len);
}

static bool same_folder(const char *a, const char *b)
{
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* A rename moves a folder from one to the other: both are on one file system. */
static bool same_file_system(const char *a, const char *b)
{
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev;
}

static bool is_folder(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0 && S_ISDIR(info.st_mode);
}

/* The number after every numbered folder of staging, with segments or not: a name no folder has. */
static erh_status next_number(regroup *r, const char *staging, long *next)
{
    *next = 0;
    DIR *listing = opendir(staging);
    if (!listing)
        return absent() ? ERH_OK : fail(r, ERH_ERR_SYSTEM, "cannot list %s: %s", staging, strerror(errno));
    for (struct dirent *entry; (entry = readdir(listing));) {
        long index = folder_index(entry->d_name);
        char path[PATH_MAX];
        if (index >= *next && numbered_path(r, path, staging, index) == ERH_OK && is_folder(path))
            *next = index + 1;
    }
    closedir(listing);
    return ERH_OK;
}

/* Lock dir/0..publishers-1, creating them: from here on no other instance writes there. */
static erh_status lock_targets(regroup *r, const char *dir)
{
    r->targets = calloc(r->publishers, sizeof *r->targets);
    if (!r->targets)
        return fail(r, ERH_ERR_NOMEM, "out of memory");
    erh_status st = ERH_OK;
    while (st == ERH_OK && r->n_targets < r->publishers) {
        char path[PATH_MAX];
        erh_spool *target = &r->targets[r->n_targets];
        *target = (erh_spool){.lock_fd = -1};
        if ((st = numbered_path(r, path, dir, r->n_targets)) != ERH_OK)
            break;
        r->n_targets++;
        if ((st = erh_spool_lock(target, path)) != ERH_OK)
            spool_failed(r, st, target);
    }
    return st;
}

static erh_status open_targets(regroup *r, const erh_spool_options *options)
{
    /* Unbounded: what was on disk stays there. Synced once per folder read (erh_spool_flush), whatever
     * spool_sync says, as that folder is deleted next. */
    erh_spool_options unbounded = *options;
    unbounded.max_bytes = UINT64_MAX;
    unbounded.sync = ERH_SPOOL_SYNC_INTERVAL;
    erh_status st = ERH_OK;
    for (unsigned i = 0; st == ERH_OK && i < r->n_targets; i++) {
        if ((st = erh_spool_open(&r->targets[i], &unbounded)) != ERH_OK)
            spool_failed(r, st, &r->targets[i]);
        r->result->cut += r->targets[i].cut;
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

/* Move the folders of list from dir to staging, numbered from *next on. Each is locked first, so a
 * folder another instance uses is not taken from it; the targets (dir/0..publishers-1) are locked
 * already, and locked again once their folder has moved. ERH_ERR_AGAIN: the first folder of a
 * previous spool_dir (not own) is on another mount than staging, so none of them can be renamed. */
static erh_status stage(regroup *r, const char *dir, const folder_list *list, bool own, const char *staging, long *next)
{
    erh_status st = ERH_OK;
    for (size_t i = 0; st == ERH_OK && i < list->count; i++) {
        long index = list->index[i];
        bool target = own && index < (long)r->n_targets;
        char from[PATH_MAX], to[PATH_MAX];
        erh_spool other = {.lock_fd = -1};
        erh_spool *spool = target ? &r->targets[index] : &other;
        if (*next > STAGED_MAX)
            return fail(r, ERH_ERR_TOO_LONG, "%s: no folder number left", staging);
        if ((st = numbered_path(r, from, dir, index)) != ERH_OK ||
            (st = numbered_path(r, to, staging, (*next)++)) != ERH_OK)
            break;
        if (!target && (st = erh_spool_lock(spool, from)) != ERH_OK)
            spool_failed(r, st, spool);
        else if ((st = erh_spool_move(spool, to)) != ERH_OK)
            st = errno == EXDEV && !own && i == 0 ? ERH_ERR_AGAIN : spool_failed(r, st, spool);
        else if (!own)
            r->result->previous_moved = true;
        erh_spool_close(spool, NULL); /* never opened: writes nothing */
        if (target && st == ERH_OK && (st = erh_spool_lock(spool, from)) != ERH_OK)
            spool_failed(r, st, spool);
    }
    return st;
}

/* Append event to the spool of the publisher its client goes to now, and free it. */
static erh_status append_event(regroup *r, erh_event *event)
{
    erh_spool *target = &r->targets[erh_event_publisher_of(event->field[ERH_F_CLIENTID], r->publishers)];
    erh_spool_pos pos;
    erh_status st = erh_spool_append(target, event, false, &pos);
    erh_event_free(event);
    if (st != ERH_OK)
        return spool_failed(r, st, target);
    r->result->events++;
    return ERH_OK;
}

/* The targets hold the copies of count records of the source's segment on disk: those records are
 * released, which deletes the segment once all of them are. So a regroup needs room for about one
 * segment more than the spool, not for a whole folder. */
static erh_status release_copied(regroup *r, erh_spool *source, uint64_t segment, uint64_t *count)
{
    for (unsigned i = 0; i < r->n_targets; i++) {
        erh_status st = erh_spool_flush(&r->targets[i]);
        if (st != ERH_OK)
            return spool_failed(r, st, &r->targets[i]);
    }
    for (; *count > 0; (*count)--)
        erh_spool_release(source, (erh_spool_pos){segment, 0});
    return ERH_OK;
}

/* Take in the spool folder at path: its events go to their publishers' spools, a segment at a time,
 * and it is deleted. On failure it keeps what was not copied. */
static erh_status take_in(regroup *r, const char *path)
{
    const erh_spool_options reading = {
        .max_bytes = UINT64_MAX, .segment_bytes = UINT64_MAX, .sync = ERH_SPOOL_SYNC_NEVER};
    erh_spool source;
    erh_spool_pos first;     /* the first record read and not released */
    uint64_t unreleased = 0; /* records read and not released, all of first's segment */
    erh_status st = erh_spool_lock(&source, path);
    if (st == ERH_OK)
        st = erh_spool_open(&source, &reading);
    if (st != ERH_OK)
        spool_failed(r, st, &source);
    while (st == ERH_OK) {
        erh_event *event;
        erh_spool_pos pos;
        if ((st = erh_spool_read(&source, &event, &pos)) != ERH_OK) {
            spool_failed(r, st, &source);
            break;
        }
        if (unreleased > 0 && (!event || pos.segment != first.segment))
            st = release_copied(r, &source, first.segment, &unreleased);
        if (st != ERH_OK || !event) {
            erh_event_free(event);
            break;
        }
        if (unreleased++ == 0)
            first = pos;
        st = append_event(r, event);
    }
    r->result->cut += source.cut;
    if (st != ERH_OK) {
        erh_spool_close(&source, unreleased > 0 ? &first : NULL);
        return st;
    }
    r->result->folders++;
    return (st = erh_spool_remove(&source)) == ERH_OK ? ERH_OK : spool_failed(r, st, &source);
}

/* previous: the folders are the previous spool_dir's, read where they are. */
static erh_status take_in_all(regroup *r, const char *dir, const folder_list *folders, bool previous)
{
    erh_status st = ERH_OK;
    r->result->previous_moved |= previous && folders->count > 0;
    for (size_t i = folders->count; st == ERH_OK && i-- > 0;) { /* the highest number first */
        char path[PATH_MAX];
        st = numbered_path(r, path, dir, folders->index[i]);
        if (st == ERH_OK)
            st = take_in(r, path);
    }
    return st;
}

/* Delete what a regroup cut short by a crash may leave in staging: folders without segments. They
 * hold nothing to send, so a failure here changes nothing. */
static void clear_staging(regroup *r, const char *staging)
{
    DIR *listing = opendir(staging);
    if (!listing)
        return;
    for (struct dirent *entry; (entry = readdir(listing));) {
        char path[PATH_MAX];
        erh_spool leftover;
        long index = folder_index(entry->d_name);
        if (index < 0 || numbered_path(r, path, staging, index) != ERH_OK || !is_folder(path) ||
            erh_spool_holds_segments(path))
            continue;
        if (erh_spool_lock(&leftover, path) == ERH_OK)
            erh_spool_remove(&leftover);
        else
            erh_spool_close(&leftover, NULL);
    }
    closedir(listing);
    rmdir(staging);
}

/* The folders of the previous spool_dir, and those a regroup there left staged. */
typedef struct previous_folders {
    char dir[PATH_MAX];
    char staging[PATH_MAX];
    folder_list numbered;
    folder_list staged;
    bool moved; /* on dir's file system: renamed into dir's staging rather than read in place */
} previous_folders;

static erh_status list_previous(regroup *r, const char *dir, const char *previous_dir, previous_folders *previous)
{
    *previous = (previous_folders){0};
    if (!previous_dir || same_folder(dir, previous_dir))
        return ERH_OK;
    if (snprintf(previous->dir, PATH_MAX, "%s", previous_dir) >= PATH_MAX ||
        snprintf(previous->staging, PATH_MAX, "%s/" STAGING, previous_dir) >= PATH_MAX)
        return fail(r, ERH_ERR_TOO_LONG, "spool path too long: %s", previous_dir);
    previous->moved = same_file_system(dir, previous_dir);
    erh_status st = list_folders(r, previous->staging, &previous->staged);
    return st == ERH_OK ? list_folders(r, previous->dir, &previous->numbered) : st;
}

static void free_previous(previous_folders *previous)
{
    free(previous->numbered.index);
    free(previous->staged.index);
}

/* Rename the previous spool_dir's folders into staging; on another mount than staging (a bind mount
 * shares the device number), they are read where they are instead. */
static erh_status stage_previous(regroup *r, previous_folders *previous, const char *staging, long *next)
{
    erh_status st = stage(r, previous->staging, &previous->staged, false, staging, next);
    if (st == ERH_OK)
        st = stage(r, previous->dir, &previous->numbered, false, staging, next);
    if (st == ERH_ERR_AGAIN && !r->result->previous_moved) {
        previous->moved = false;
        return ERH_OK;
    }
    return st;
}

static bool reading_path(const char *staging, char path[PATH_MAX])
{
    return snprintf(path, PATH_MAX, "%s/" READING, staging) < PATH_MAX;
}

/* The previous spool_dir to take in: previous_dir when given, else the one a regroup cut short was
 * reading where it is (staging/READING names it), else none. */
static const char *previous_to_take(const char *dir, const char *staging, const char *previous_dir,
                                    char recorded[PATH_MAX])
{
    char path[PATH_MAX];
    if ((previous_dir && !same_folder(dir, previous_dir)) || !reading_path(staging, path))
        return previous_dir;
    FILE *file = fopen(path, "re");
    if (!file)
        return previous_dir;
    size_t len = fgets(recorded, PATH_MAX, file) ? strcspn(recorded, "\n") : 0;
    fclose(file);
    recorded[len] = '\0';
    return len ? recorded : previous_dir;
}

/* Name the previous folder in staging/READING before reading it where it is: a start after a crash
 * then knows where the events it did not move are. */
static erh_status record_reading(regroup *r, const char *staging, const char *previous)
{
    char text[PATH_MAX + 1];
    if (snprintf(text, sizeof text, "%s\n", previous) >= (int)sizeof text)
        return fail(r, ERH_ERR_TOO_LONG, "spool path too long: %s", previous);
    erh_status st = erh_spool_make_dirs(staging, r->errstr, r->errstr_len);
    return st == ERH_OK ? erh_spool_write_file(staging, READING, text, true, r->errstr, r->errstr_len) : st;
}

/* A rename or a new folder is on disk once the folder that lists it is synced: before anything is
 * deleted, sync each folder a regroup changed. */
static erh_status sync_folders(regroup *r, const char *const *folders, size_t count)
{
    erh_status st = ERH_OK;
    for (size_t i = 0; st == ERH_OK && i < count; i++)
        if (folders[i])
            st = erh_spool_sync_folder(folders[i], r->errstr, r->errstr_len);
    return st;
}

/* The targets' folders, and dir itself when it is new, are listed on disk before anything is
 * deleted. */
static erh_status sync_created(regroup *r, const char *dir)
{
    char parent[PATH_MAX];
    size_t len = (size_t)snprintf(parent, sizeof parent, "%s", dir);
    while (len > 1 && len < sizeof parent && parent[len - 1] == '/')
        parent[--len] = '\0'; /* "spool/" is "spool" */
    char *slash = strrchr(parent, '/');
    if (slash)
        slash[slash == parent] = '\0'; /* "/spool" has the parent "/" */
    const char *folders[] = {dir, slash ? parent : "."};
    return sync_folders(r, folders, sizeof folders / sizeof *folders);
}

erh_status erh_spool_regroup(const char *dir, const char *previous_dir, unsigned publishers,
                             const erh_spool_options *options, erh_regroup_result *result, char *errstr,
                             size_t errstr_len)
{
    *result = (erh_regroup_result){0};
    regroup r = {.publishers = publishers, .result = result, .errstr = errstr, .errstr_len = errstr_len};
    char staging[PATH_MAX];
    folder_list own = {0}, staged = {0};
    previous_folders previous = {0};
    long next = 0;
    erh_status st = snprintf(staging, sizeof staging, "%s/" STAGING, dir) < (int)sizeof staging
                        ? ERH_OK
                        : fail(&r, ERH_ERR_TOO_LONG, "spool path too long: %s", dir);
    if (st == ERH_OK)
        st = lock_targets(&r, dir);
    if (st == ERH_OK)
        st = list_folders(&r, dir, &own);
    if (st == ERH_OK)
        st = list_folders(&r, staging, &staged);
    if (st == ERH_OK)
        st = next_number(&r, staging, &next);
    char recorded[PATH_MAX];
    const char *previous_taken = previous_to_take(dir, staging, previous_dir, recorded);
    if (st == ERH_OK)
        st = list_previous(&r, dir, previous_taken, &previous);
    unsigned marked = written_for(dir);
    /* Folders written for another count, or for an unknown one, move aside, all of them: a regroup
     * under the same count leaves each event where it is. A regroup cut short by a crash (staging
     * not empty) left some of its events in the numbered folders. */
    bool restage =
        own.count > 0 && (staged.count > 0 || marked != publishers || own.index[own.count - 1] >= (long)publishers);
    bool any_previous = previous.numbered.count + previous.staged.count > 0;
    bool renames = restage || (previous.moved && any_previous);
    if (st == ERH_OK && renames)
        st = erh_spool_make_dirs(staging, errstr, errstr_len);
    /* Staged folders are taken in from the highest number down, which is oldest first: a start
     * stages the previous spool_dir's folders (newer events) before dir's own, and what a later
     * start stages holds the copies a regroup cut short made of the beginnings of folders staged
     * before it. */
    if (st == ERH_OK && previous.moved)
        st = stage_previous(&r, &previous, staging, &next);
    if (st == ERH_OK && restage)
        st = stage(&r, dir, &own, true, staging, &next);
    if (st == ERH_OK && renames) { /* previous.moved is false now if the previous folders could not move */
        const char *changed[] = {staging, dir, previous.moved && previous.staged.count ? previous.staging : NULL,
                                 previous.moved && previous.numbered.count ? previous.dir : NULL};
        st = sync_folders(&r, changed, sizeof changed / sizeof *changed);
        free(staged.index);
        staged = (folder_list){0};
        if (st == ERH_OK)
            st = list_folders(&r, staging, &staged);
    }
    bool in_place = !previous.moved && any_previous;
    if (st == ERH_OK && (staged.count > 0 || in_place)) {
        st = open_targets(&r, options);
        if (st == ERH_OK)
            st = sync_created(&r, dir);
        if (st == ERH_OK)
            st = take_in_all(&r, staging, &staged, false);
        if (st == ERH_OK && in_place && previous_taken != recorded)
            st = record_reading(&r, staging, previous.dir);
        if (st == ERH_OK && in_place)
            st = take_in_all(&r, previous.dir, &previous.numbered, true);
        if (st == ERH_OK && in_place)
            st = take_in_all(&r, previous.staging, &previous.staged, true);
    }
    char reading[PATH_MAX];
    if (st == ERH_OK && (previous_taken == recorded || in_place) && reading_path(staging, reading))
        unlink(reading); /* all of that folder moved */
    if (st == ERH_OK)
        clear_staging(&r, staging);
    if (st == ERH_OK && marked != publishers)
        st = mark(&r, dir); /* while the targets are locked: no other instance writes under another count */
    st = close_targets(&r, st);
    free(own.index);
    free(staged.index);
    free_previous(&previous);
    return st;
}
