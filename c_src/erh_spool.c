#include "erh_spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "ERHSPL01"
#define MAGIC_BYTES 8
#define FRAME_BYTES 8 /* payload length and CRC-32C, little-endian */
#define SEGMENT_SUFFIX ".seg"
#define ID_DIGITS 20

/* Little-endian, whatever the machine. */
static uint32_t get32(const unsigned char *at)
{
    return (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 | (uint32_t)at[3] << 24;
}

/* ---- CRC-32C (Castagnoli), slicing by 8: eight bytes per step through eight tables ---- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t crc = i;
        for (int bit = 0; bit < 8; bit++)
            crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        crc_table[0][i] = crc;
    }
    for (int k = 1; k < 8; k++)
        for (uint32_t i = 0; i < 256; i++)
            crc_table[k][i] = (crc_table[k - 1][i] >> 8) ^ crc_table[0][crc_table[k - 1][i] & 0xFF];
}

static uint32_t crc32c(const void *data, size_t len)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *at = data;
    uint32_t crc = 0xFFFFFFFFu;
    for (; len >= 8; at += 8, len -= 8) {
        uint32_t low = crc ^ get32(at), high = get32(at + 4);
        crc = crc_table[7][low & 0xFF] ^ crc_table[6][(low >> 8) & 0xFF] ^ crc_table[5][(low >> 16) & 0xFF] ^
              crc_table[4][low >> 24] ^ crc_table[3][high & 0xFF] ^ crc_table[2][(high >> 8) & 0xFF] ^
              crc_table[1][(high >> 16) & 0xFF] ^ crc_table[0][high >> 24];
    }
    while (len--)
        crc = crc_table[0][(crc ^ *at++) & 0xFF] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

static void put32(unsigned char *at, uint32_t value)
{
    for (int i = 0; i < 4; i++)
        at[i] = (unsigned char)(value >> (8 * i));
}

/* ---- errors and paths ---- */

static erh_status fail(erh_spool *spool, erh_status status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(spool->errstr, sizeof spool->errstr, fmt, args);
    va_end(args);
    return status;
}

static erh_status fail_errno(erh_spool *spool, const char *doing, const char *path)
{
    return fail(spool, ERH_ERR_SYSTEM, "%s %s: %s", doing, path, strerror(errno));
}

static erh_status path_of(erh_spool *spool, const char *name, char out[PATH_MAX])
{
    int len = snprintf(out, PATH_MAX, "%s/%s", spool->dir, name);
    return len > 0 && len < PATH_MAX ? ERH_OK : fail(spool, ERH_ERR_TOO_LONG, "spool path too long: %s", spool->dir);
}

static erh_status segment_path(erh_spool *spool, uint64_t id, char out[PATH_MAX])
{
    char name[ID_DIGITS + sizeof SEGMENT_SUFFIX];
    snprintf(name, sizeof name, "%0*" PRIu64 SEGMENT_SUFFIX, ID_DIGITS, id);
    return path_of(spool, name, out);
}

/* The id of a segment file name, or 0 for any other name (ids start at 1). */
static uint64_t segment_id(const char *name)
{
    if (strlen(name) != ID_DIGITS + strlen(SEGMENT_SUFFIX) || strcmp(name + ID_DIGITS, SEGMENT_SUFFIX) != 0)
        return 0;
    uint64_t id = 0;
    for (int i = 0; i < ID_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9' || id > (UINT64_MAX - 9) / 10)
            return 0;
        id = id * 10 + (uint64_t)(name[i] - '0');
    }
    return id;
}

/* ---- plain I/O that finishes what it starts ---- */

/* pread or pwrite all of len bytes, going on after short transfers and EINTR. */
static bool transfer_all(int fd, void *buf, size_t len, uint64_t offset, bool write)
{
    char *at = buf;
    while (len > 0) {
        ssize_t n = write ? pwrite(fd, at, len, (off_t)offset) : pread(fd, at, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        at += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return true;
}

static bool pread_all(int fd, void *buf, size_t len, uint64_t offset)
{
    return transfer_all(fd, buf, len, offset, false);
}

static bool pwrite_all(int fd, const void *buf, size_t len, uint64_t offset)
{
    return transfer_all(fd, (void *)buf, len, offset, true);
}

/* ---- lock ---- */

erh_status erh_spool_make_dirs(const char *dir, char *errstr, size_t errstr_len)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        snprintf(errstr, errstr_len, "spool path too long: %s", dir);
        return ERH_ERR_TOO_LONG;
    }
    for (char *at = path + (path[0] == '/');; at++) {
        bool last = *at == '\0';
        if (*at != '/' && !last)
            continue;
        *at = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            snprintf(errstr, errstr_len, "cannot create %s: %s", path, strerror(errno));
            return ERH_ERR_SYSTEM;
        }
        if (last)
            return ERH_OK;
        *at = '/';
    }
}

erh_status erh_spool_lock(erh_spool *spool, const char *dir)
{
    *spool = (erh_spool){.lock_fd = -1};
    spool->dir = strdup(dir);
    if (!spool->dir)
        return fail(spool, ERH_ERR_NOMEM, "out of memory");
    char path[PATH_MAX];
    erh_status st = erh_spool_make_dirs(dir, spool->errstr, sizeof spool->errstr);
    if (st == ERH_OK)
        st = path_of(spool, "LOCK", path);
    if (st != ERH_OK)
        return st;
    spool->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (spool->lock_fd < 0)
        return fail_errno(spool, "cannot open", path);
    if (flock(spool->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return errno == EWOULDBLOCK ? fail(spool, ERH_ERR_BUSY, "%s is in use by another instance", spool->dir)
                                    : fail_errno(spool, "cannot lock", path);
    return ERH_OK;
}

/* ---- records ---- */

/* Read the record at offset into spool->record (payload only) after checking its frame and CRC.
 * ERH_ERR_BADARG: torn or corrupt. */
static erh_status read_record(erh_spool *spool, const erh_spool_segment *seg, uint64_t offset, size_t *len)
{
    unsigned char frame[FRAME_BYTES];
    if (seg->size < offset + FRAME_BYTES)
        return ERH_ERR_BADARG;
    if (!pread_all(seg->fd, frame, FRAME_BYTES, offset))
        return fail(spool, ERH_ERR_SYSTEM, "cannot read spool segment %" PRIu64 ": %s", seg->id, strerror(errno));
    uint32_t payload = get32(frame);
    if (payload == 0 || payload > seg->size - offset - FRAME_BYTES)
        return ERH_ERR_BADARG;
    if (erh_buf_reserve(&spool->record, payload) != ERH_OK)
        return fail(spool, ERH_ERR_NOMEM, "out of memory reading the spool");
    if (!pread_all(seg->fd, spool->record.data, payload, offset + FRAME_BYTES))
        return fail(spool, ERH_ERR_SYSTEM, "cannot read spool segment %" PRIu64 ": %s", seg->id, strerror(errno));
    if (crc32c(spool->record.data, payload) != get32(frame + 4))
        return ERH_ERR_BADARG;
    *len = payload;
    return ERH_OK;
}

/* ---- segments ---- */

static erh_status add_segment(erh_spool *spool, erh_spool_segment seg)
{
    if (spool->count == spool->cap) {
        size_t cap = spool->cap ? spool->cap * 2 : 8;
        erh_spool_segment *grown = realloc(spool->segments, cap * sizeof *grown);
        if (!grown)
            return fail(spool, ERH_ERR_NOMEM, "out of memory");
        spool->segments = grown;
        spool->cap = cap;
    }
    spool->segments[spool->count++] = seg;
    return ERH_OK;
}

static void remove_first_segment(erh_spool *spool)
{
    erh_spool_segment *seg = &spool->segments[0];
    char path[PATH_MAX];
    close(seg->fd);
    if (segment_path(spool, seg->id, path) == ERH_OK)
        unlink(path);
    spool->bytes -= seg->size;
    memmove(spool->segments, spool->segments + 1, --spool->count * sizeof *seg);
    if (spool->read_index > 0)
        spool->read_index--;
    else
        spool->read_offset = MAGIC_BYTES;
}

static erh_status sync_last(erh_spool *spool)
{
    if (!spool->dirty || spool->count == 0)
        return ERH_OK;
    spool->dirty = false;
    if (fdatasync(spool->segments[spool->count - 1].fd) != 0)
        return fail(spool, ERH_ERR_SYSTEM, "cannot sync the spool: %s", strerror(errno));
    return ERH_OK;
}

erh_status erh_spool_sync_folder(const char *dir, char *errstr, size_t errstr_len)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool ok = fd >= 0 && fsync(fd) == 0;
    if (!ok)
        snprintf(errstr, errstr_len, "cannot sync %s: %s", dir, strerror(errno));
    if (fd >= 0)
        close(fd);
    return ok ? ERH_OK : ERH_ERR_SYSTEM;
}

static erh_status sync_dir(erh_spool *spool)
{
    if (spool->options.sync == ERH_SPOOL_SYNC_NEVER)
        return ERH_OK;
    return erh_spool_sync_folder(spool->dir, spool->errstr, sizeof spool->errstr);
}

static erh_status new_segment(erh_spool *spool)
{
    if (spool->options.sync != ERH_SPOOL_SYNC_NEVER) {
        erh_status st = sync_last(spool);
        if (st != ERH_OK)
            return st;
    }
    char path[PATH_MAX];
    uint64_t id = spool->next_id;
    erh_status st = segment_path(spool, id, path);
    if (st != ERH_OK)
        return st;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail_errno(spool, "cannot create", path);
    st = pwrite_all(fd, MAGIC, MAGIC_BYTES, 0) ? sync_dir(spool) : fail_errno(spool, "cannot write", path);
    if (st == ERH_OK)
        st = add_segment(spool, (erh_spool_segment){id, fd, MAGIC_BYTES, 0});
    if (st != ERH_OK) {
        close(fd);
        unlink(path);
        return st;
    }
    spool->next_id++;
    spool->bytes += MAGIC_BYTES;
    return ERH_OK;
}

/* ---- open ---- */

static int compare_ids(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The ids of the segment files, sorted. */
static erh_status list_segments(erh_spool *spool, uint64_t **ids, size_t *count)
{
    size_t cap = 0;
    *ids = NULL;
    *count = 0;
    DIR *dir = opendir(spool->dir);
    if (!dir)
        return fail_errno(spool, "cannot list", spool->dir);
    erh_status st = ERH_OK;
    for (struct dirent *entry; st == ERH_OK && (entry = readdir(dir));) {
        uint64_t id = segment_id(entry->d_name);
        if (!id)
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *grown = realloc(*ids, cap * sizeof **ids);
            if (!grown) {
                st = fail(spool, ERH_ERR_NOMEM, "out of memory");
                break;
            }
            *ids = grown;
        }
        (*ids)[(*count)++] = id;
    }
    closedir(dir);
    if (st == ERH_OK && *count > 1)
        qsort(*ids, *count, sizeof **ids, compare_ids);
    return st;
}

/* HEAD holds "segment offset"; a missing or unreadable HEAD means "from the first record". */
static erh_spool_pos read_head(erh_spool *spool)
{
    erh_spool_pos head = {0, 0};
    char path[PATH_MAX];
    if (path_of(spool, "HEAD", path) != ERH_OK)
        return head;
    FILE *file = fopen(path, "re");
    if (!file)
        return head;
    if (fscanf(file, "%" SCNu64 " %" SCNu64, &head.segment, &head.offset) != 2)
        head = (erh_spool_pos){0, 0};
    fclose(file);
    return head;
}

/* Check every record of a segment; cut it at the first torn or corrupt one. Records before
 * skip_before are already confirmed: not pending. *first is the offset of the first pending one. */
static erh_status scan_segment(erh_spool *spool, erh_spool_segment *seg, uint64_t skip_before, uint64_t *first)
{
    char magic[MAGIC_BYTES];
    *first = seg->size;
    if (seg->size < MAGIC_BYTES || !pread_all(seg->fd, magic, MAGIC_BYTES, 0) || memcmp(magic, MAGIC, MAGIC_BYTES)) {
        spool->cut++;
        seg->size = 0;
        return ERH_OK;
    }
    uint64_t offset = MAGIC_BYTES;
    while (offset < seg->size) {
        size_t len;
        erh_status st = read_record(spool, seg, offset, &len);
        if (st == ERH_ERR_BADARG) {
            spool->cut++;
            if (ftruncate(seg->fd, (off_t)offset) != 0)
                return fail(spool, ERH_ERR_SYSTEM, "cannot cut spool segment %" PRIu64 ": %s", seg->id,
                            strerror(errno));
            seg->size = offset;
            break;
        }
        if (st != ERH_OK)
            return st;
        if (offset >= skip_before) {
            if (seg->pending++ == 0)
                *first = offset;
        }
        offset += FRAME_BYTES + len;
    }
    return ERH_OK;
}

/* Open one segment file and keep it when it holds pending records; delete it otherwise. */
static erh_status open_segment(erh_spool *spool, uint64_t id, uint64_t skip_before, uint64_t *first)
{
    char path[PATH_MAX];
    *first = MAGIC_BYTES;
    erh_status st = segment_path(spool, id, path);
    if (st != ERH_OK)
        return st;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat info;
    if (fd < 0 || fstat(fd, &info) != 0) {
        st = fail_errno(spool, "cannot open", path);
        if (fd >= 0)
            close(fd);
        return st;
    }
    erh_spool_segment seg = {id, fd, (uint64_t)info.st_size, 0};
    st = scan_segment(spool, &seg, skip_before, first);
    if (st == ERH_OK && seg.pending > 0) {
        st = add_segment(spool, seg);
        if (st == ERH_OK) {
            spool->bytes += seg.size;
            return ERH_OK;
        }
    }
    close(fd);
    if (st == ERH_OK)
        unlink(path);
    return st;
}

erh_status erh_spool_open(erh_spool *spool, const erh_spool_options *options)
{
    spool->options = *options;
    spool->read_offset = MAGIC_BYTES;
    erh_spool_pos head = read_head(spool);
    uint64_t *ids;
    size_t count;
    erh_status st = list_segments(spool, &ids, &count);
    if (st != ERH_OK)
        return st;
    spool->next_id = (count ? ids[count - 1] : 0) + 1;
    if (spool->next_id <= head.segment)
        spool->next_id = head.segment + 1;
    for (size_t i = 0; st == ERH_OK && i < count; i++) {
        char path[PATH_MAX];
        if (ids[i] < head.segment) {
            if (segment_path(spool, ids[i], path) == ERH_OK)
                unlink(path);
            continue;
        }
        bool was_empty = spool->count == 0;
        uint64_t first;
        st = open_segment(spool, ids[i], ids[i] == head.segment ? head.offset : 0, &first);
        if (st == ERH_OK && was_empty && spool->count == 1)
            spool->read_offset = first;
    }
    free(ids);
    char path[PATH_MAX];
    if (st == ERH_OK && path_of(spool, "HEAD", path) == ERH_OK)
        unlink(path);
    for (size_t i = 0; i < spool->count; i++)
        spool->unread += spool->segments[i].pending;
    return st;
}

/* ---- append, read, release ---- */

erh_status erh_spool_append(erh_spool *spool, const erh_event *event, bool taken, erh_spool_pos *pos)
{
    if (taken && spool->unread > 0)
        return fail(spool, ERH_ERR_BADARG, "a taken record cannot follow unread ones");
    erh_buf *record = &spool->record;
    unsigned char frame[FRAME_BYTES] = {0};
    record->len = 0;
    erh_status st = erh_buf_append(record, (const char *)frame, FRAME_BYTES);
    if (st == ERH_OK)
        st = erh_event_pack(event, record);
    if (st != ERH_OK)
        return fail(spool, st, "cannot pack an event: %s", erh_strerror(st));
    size_t payload = record->len - FRAME_BYTES;
    if (payload > UINT32_MAX)
        return fail(spool, ERH_ERR_TOO_LONG, "event too large for the spool");
    put32((unsigned char *)record->data, (uint32_t)payload);
    put32((unsigned char *)record->data + 4, crc32c(record->data + FRAME_BYTES, payload));

    bool roll = spool->count == 0 || spool->segments[spool->count - 1].size >= spool->options.segment_bytes;
    if (spool->bytes + (roll ? MAGIC_BYTES : 0) + record->len > spool->options.max_bytes)
        return ERH_ERR_FULL;
    if (roll && (st = new_segment(spool)) != ERH_OK)
        return st;
    erh_spool_segment *seg = &spool->segments[spool->count - 1];
    bool sync = spool->options.sync == ERH_SPOOL_SYNC_ALWAYS;
    bool written = pwrite_all(seg->fd, record->data, record->len, seg->size);
    if (!written || (sync && fdatasync(seg->fd) != 0)) {
        /* Not written, or not known to be on disk: take the record back, so the caller may write
         * it again without a duplicate. */
        st = fail(spool, ERH_ERR_SYSTEM, "cannot %s spool segment %" PRIu64 ": %s", written ? "sync" : "write",
                  seg->id, strerror(errno));
        if (ftruncate(seg->fd, (off_t)seg->size) != 0)
            spool->cut++; /* the torn record is cut at the next open */
        return st;
    }
    *pos = (erh_spool_pos){seg->id, seg->size};
    seg->size += record->len;
    spool->bytes += record->len;
    seg->pending++;
    if (taken) {
        spool->read_index = spool->count - 1;
        spool->read_offset = seg->size;
    } else {
        spool->unread++;
    }
    spool->dirty = !sync;
    return ERH_OK;
}

/* Records after the cursor in the segment at index: the pending ones not yet read. Only the
 * cursor's segment has read and unread records; earlier ones are all read, later ones all unread. */
static uint64_t segment_unread(const erh_spool *spool, size_t index)
{
    if (index < spool->read_index)
        return 0;
    if (index > spool->read_index)
        return spool->segments[index].pending;
    uint64_t later = 0;
    for (size_t i = index + 1; i < spool->count; i++)
        later += spool->segments[i].pending;
    return spool->unread - later;
}

/* Delete the oldest segments whose records are all released. */
static void collect(erh_spool *spool)
{
    while (spool->count > 0 && spool->segments[0].pending == 0)
        remove_first_segment(spool);
}

erh_status erh_spool_read(erh_spool *spool, erh_event **event, erh_spool_pos *pos)
{
    *event = NULL;
    while (spool->unread > 0) {
        erh_spool_segment *seg = &spool->segments[spool->read_index];
        if (spool->read_offset >= seg->size) {
            spool->read_index++;
            spool->read_offset = MAGIC_BYTES;
            continue;
        }
        size_t len;
        erh_status st = read_record(spool, seg, spool->read_offset, &len);
        if (st == ERH_OK)
            st = erh_event_unpack(spool->record.data, len, event);
        if (st == ERH_OK) {
            *pos = (erh_spool_pos){seg->id, spool->read_offset};
            spool->read_offset += FRAME_BYTES + len;
            spool->unread--;
            return ERH_OK;
        }
        if (st != ERH_ERR_BADARG)
            return st == ERH_ERR_NOMEM ? fail(spool, st, "out of memory reading the spool") : st;
        /* Checked when opened, bad now: skip what is left of this segment rather than guess. */
        uint64_t skipped = segment_unread(spool, spool->read_index);
        spool->unread -= skipped;
        seg->pending -= skipped;
        spool->read_offset = seg->size;
        spool->cut++;
        collect(spool);
    }
    return ERH_OK;
}

void erh_spool_release(erh_spool *spool, erh_spool_pos pos)
{
    for (size_t i = 0; i < spool->count; i++) {
        if (spool->segments[i].id == pos.segment) {
            if (spool->segments[i].pending > 0)
                spool->segments[i].pending--;
            break;
        }
    }
    collect(spool);
}

erh_status erh_spool_tick(erh_spool *spool, int64_t now_ms)
{
    if (spool->options.sync != ERH_SPOOL_SYNC_INTERVAL || !spool->dirty ||
        now_ms - spool->synced_at_ms < (int64_t)spool->options.sync_interval_ms)
        return ERH_OK;
    spool->synced_at_ms = now_ms;
    return sync_last(spool);
}

uint64_t erh_spool_pending(const erh_spool *spool)
{
    uint64_t pending = 0;
    for (size_t i = 0; i < spool->count; i++)
        pending += spool->segments[i].pending;
    return pending;
}

/* ---- close ---- */

erh_status erh_spool_write_file(const char *dir, const char *name, const char *text, bool sync, char *errstr,
                                size_t errstr_len)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path ||
        snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        snprintf(errstr, errstr_len, "spool path too long: %s", dir);
        return ERH_ERR_TOO_LONG;
    }
    FILE *file = fopen(tmp, "we");
    bool ok = file && fputs(text, file) >= 0 && fflush(file) == 0 && (!sync || fdatasync(fileno(file)) == 0);
    ok = (!file || fclose(file) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(errstr, errstr_len, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return ERH_ERR_SYSTEM;
    }
    return sync ? erh_spool_sync_folder(dir, errstr, errstr_len) : ERH_OK;
}

static erh_status write_head(erh_spool *spool, erh_spool_pos head)
{
    char text[2 * ID_DIGITS + 3];
    snprintf(text, sizeof text, "%" PRIu64 " %" PRIu64 "\n", head.segment, head.offset);
    return erh_spool_write_file(spool->dir, "HEAD", text, spool->options.sync != ERH_SPOOL_SYNC_NEVER, spool->errstr,
                                sizeof spool->errstr);
}

/* Free what the spool holds and forget it, keeping errstr for the caller. */
static void discard(erh_spool *spool)
{
    for (size_t i = 0; i < spool->count; i++)
        close(spool->segments[i].fd);
    if (spool->lock_fd >= 0)
        close(spool->lock_fd);
    free(spool->segments);
    free(spool->dir);
    erh_buf_free(&spool->record);
    char errstr[sizeof spool->errstr];
    memcpy(errstr, spool->errstr, sizeof errstr);
    *spool = (erh_spool){.lock_fd = -1};
    memcpy(spool->errstr, errstr, sizeof errstr);
}

erh_status erh_spool_close(erh_spool *spool, const erh_spool_pos *head)
{
    erh_status st = ERH_OK;
    if (spool->count > 0) {
        erh_spool_pos cursor = {spool->segments[spool->read_index < spool->count ? spool->read_index : 0].id,
                                spool->read_offset};
        st = write_head(spool, head ? *head : cursor);
    }
    if (spool->options.sync != ERH_SPOOL_SYNC_NEVER) {
        erh_status synced = sync_last(spool);
        st = st == ERH_OK ? synced : st;
    }
    discard(spool); /* errstr says why the close failed */
    return st;
}

/* ---- moving and removing a whole spool ---- */

erh_status erh_spool_move(erh_spool *spool, const char *dir)
{
    char *moved = strdup(dir);
    if (!moved)
        return fail(spool, ERH_ERR_NOMEM, "out of memory");
    if (rename(spool->dir, dir) != 0) {
        int error = errno;
        erh_status st = fail(spool, ERH_ERR_SYSTEM, "cannot move %s to %s: %s", spool->dir, dir, strerror(error));
        free(moved);
        errno = error;
        return st;
    }
    free(spool->dir);
    spool->dir = moved;
    return ERH_OK;
}

/* The files a spool makes: its segments, HEAD (and HEAD.tmp while it is written) and LOCK. */
static bool spool_file(const char *name)
{
    return segment_id(name) || !strcmp(name, "HEAD") || !strcmp(name, "HEAD.tmp") || !strcmp(name, "LOCK");
}

erh_status erh_spool_remove(erh_spool *spool)
{
    /* Closed first: a file unlinked while open lingers on some file systems (NFS). */
    for (size_t i = 0; i < spool->count; i++)
        close(spool->segments[i].fd);
    spool->count = 0;
    DIR *dir = opendir(spool->dir);
    erh_status st = dir ? ERH_OK : fail_errno(spool, "cannot list", spool->dir);
    for (struct dirent *entry; st == ERH_OK && (entry = readdir(dir));) {
        char path[PATH_MAX];
        if (!spool_file(entry->d_name))
            continue;
        st = path_of(spool, entry->d_name, path);
        if (st == ERH_OK && unlink(path) != 0)
            st = fail_errno(spool, "cannot delete", path);
    }
    if (dir)
        closedir(dir);
    if (st == ERH_OK)
        rmdir(spool->dir); /* a folder holding anything else stays: nothing in it is sent */
    discard(spool);
    return st;
}

bool erh_spool_holds_segments(const char *dir)
{
    DIR *listing = opendir(dir);
    if (!listing)
        return false;
    bool found = false;
    for (struct dirent *entry; !found && (entry = readdir(listing));)
        found = segment_id(entry->d_name) != 0;
    closedir(listing);
    return found;
}

erh_status erh_spool_flush(erh_spool *spool)
{
    erh_status st = sync_last(spool);
    return st == ERH_OK ? sync_dir(spool) : st;
}
