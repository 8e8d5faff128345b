/* The disk spool of one publisher: an append-only log of events in segment files, read in order
 * and deleted a segment at a time once every event in it is confirmed.
 *
 * Files in the spool's folder: LOCK (flock'ed while a spool is open, so two instances never share
 * a folder), <20-digit id>.seg segments, and HEAD, written on close, naming the first record to
 * send again at the next open. A segment is a magic header and records, each a 32-bit length, the
 * CRC-32C of the payload and the payload (erh_event_pack). Opening a spool checks every record and
 * cuts a segment at the first that is torn or corrupt, counting it. Owned by one thread. */
#ifndef ERH_SPOOL_H
#define ERH_SPOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "erh_buf.h"
#include "erh_event.h"

typedef enum erh_spool_sync {
    ERH_SPOOL_SYNC_ALWAYS,   /* fdatasync after every append: survives a machine crash */
    ERH_SPOOL_SYNC_INTERVAL, /* fdatasync at most every sync_interval_ms */
    ERH_SPOOL_SYNC_NEVER,    /* leave it to the operating system */
} erh_spool_sync;

typedef struct erh_spool_options {
    uint64_t max_bytes;     /* all segments together, headers included */
    uint64_t segment_bytes; /* a segment past this size takes no more appends */
    erh_spool_sync sync;
    unsigned sync_interval_ms;
} erh_spool_options;

/* Where one record stands: its segment and its offset in it. */
typedef struct erh_spool_pos {
    uint64_t segment;
    uint64_t offset;
} erh_spool_pos;

typedef struct erh_spool_segment {
    uint64_t id;
    int fd;
    uint64_t size;    /* bytes in the file */
    uint64_t pending; /* records not yet released, read or not */
} erh_spool_segment;

typedef struct erh_spool {
    char *dir;
    int lock_fd;
    erh_spool_options options;
    erh_spool_segment *segments; /* oldest first; the last one takes appends */
    size_t count;
    size_t cap;
    size_t read_index;    /* the cursor: next record to read */
    uint64_t read_offset;
    uint64_t unread;      /* records at or after the cursor */
    uint64_t bytes;
    uint64_t next_id;
    uint64_t cut;         /* torn or corrupt records cut since open, for the counters */
    bool dirty;           /* appended since the last fdatasync */
    int64_t synced_at_ms;
    erh_buf record;       /* one record while it is written or read */
    char errstr[256];
} erh_spool;

/* mkdir -p dir; on error errstr says why. */
erh_status erh_spool_make_dirs(const char *dir, char *errstr, size_t errstr_len);

/* Replace dir/name with text through a temporary file and a rename, so a crash leaves the old
 * content or the new; with sync, the file and the folder are synced. On error errstr says why. */
erh_status erh_spool_write_file(const char *dir, const char *name, const char *text, bool sync, char *errstr,
                                size_t errstr_len);

/* Create dir (and its parents) and lock it. Cheap: no segment is read. Safe to call on a zeroed
 * spool; on error errstr says why (ERH_ERR_CLOSED: another spool holds the lock). */
erh_status erh_spool_lock(erh_spool *spool, const char *dir);

/* Read the segments of a locked spool: check every record, cut what is torn or corrupt (counted
 * in cut), and place the cursor at HEAD, or at the first record. */
erh_status erh_spool_open(erh_spool *spool, const erh_spool_options *options);

/* Append event. With taken, the record is already in the caller's hands: it is not read again
 * (only allowed when nothing is unread), but it stays pending until released. ERH_ERR_FULL when
 * max_bytes would be passed; the spool is unchanged on any error. */
erh_status erh_spool_append(erh_spool *spool, const erh_event *event, bool taken, erh_spool_pos *pos);

/* The next unread record as a new event, or *event = NULL when all is read. A record that fails
 * its checksum now (the disk changed under us) is skipped with the rest of its segment, counted
 * in cut. */
erh_status erh_spool_read(erh_spool *spool, erh_event **event, erh_spool_pos *pos);

/* The record of a read (or taken) event is confirmed: segments whose records are all released
 * and read are deleted. */
void erh_spool_release(erh_spool *spool, erh_spool_pos pos);

/* fdatasync when the sync policy says it is due at now_ms. */
erh_status erh_spool_tick(erh_spool *spool, int64_t now_ms);

/* Records pending (unread, or read and not released). */
uint64_t erh_spool_pending(const erh_spool *spool);

/* Write HEAD (head, or the cursor when head is NULL: the first record to send at the next open),
 * sync, close the files and drop the lock. Safe on a zeroed or half-opened spool. */
erh_status erh_spool_close(erh_spool *spool, const erh_spool_pos *head);

/* Move a locked spool's folder to dir (rename(2), so on the same file system), before it opens. On
 * failure errno is rename's: EXDEV when the two are on different mounts. */
erh_status erh_spool_move(erh_spool *spool, const char *dir);

/* Delete a locked spool's files (segments, HEAD, LOCK) and close it: for a spool whose records are
 * all kept elsewhere. Its folder goes too unless it holds other files. */
erh_status erh_spool_remove(erh_spool *spool);

/* fsync the folder dir: a file created or renamed in it is on disk only then. On error errstr says
 * why. */
erh_status erh_spool_sync_folder(const char *dir, char *errstr, size_t errstr_len);

/* fdatasync the records appended since the last sync, and the folder (unless the policy is never). */
erh_status erh_spool_flush(erh_spool *spool);

/* Does the folder hold a segment file? false when it cannot be listed. No lock needed. */
bool erh_spool_holds_segments(const char *dir);

#endif
