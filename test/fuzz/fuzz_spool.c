/* The spool reader (erh_spool.c, erh_event_unpack): any bytes as a segment file, after the magic
 * header, are opened, cut where torn or corrupt, and read back without a crash or a leak; every
 * event read packs and reads back to itself, and releasing them all empties the spool.
 * Input: the records of one segment. */
#include <unistd.h>

#include "erh_spool.h"
#include "fuzz.h"

static char dir[64];
static char segment[128];

static void write_segment(const uint8_t *data, size_t size)
{
    FILE *file = fopen(segment, "wb");
    FUZZ_CHECK(file != NULL, "cannot create %s", segment);
    FUZZ_CHECK(fwrite("ERHSPL01", 1, 8, file) == 8 && (size == 0 || fwrite(data, 1, size, file) == size) &&
                   fclose(file) == 0,
               "cannot write %s", segment);
}

/* libFuzzer ends a run with exit(): the spool's folder (its lock file and a last segment) goes then,
 * as test_spool removes its own. */
static void remove_dir(void)
{
    char command[sizeof dir + 16];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    if (system(command) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        strcpy(dir, "/tmp/erh_fuzz_spool_XXXXXX");
        FUZZ_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
        snprintf(segment, sizeof segment, "%s/%020d.seg", dir, 1);
        atexit(remove_dir);
    }
    write_segment(data, size);
    erh_spool spool;
    const erh_spool_options options = {.max_bytes = 1 << 30, .segment_bytes = 1 << 20, .sync = ERH_SPOOL_SYNC_NEVER};
    FUZZ_CHECK(erh_spool_lock(&spool, dir) == ERH_OK && erh_spool_open(&spool, &options) == ERH_OK, "open: %s",
               spool.errstr);
    uint64_t pending = erh_spool_pending(&spool);
    FUZZ_CHECK(pending == spool.unread, "%llu pending, %llu unread", (unsigned long long)pending,
               (unsigned long long)spool.unread);
    erh_buf packed = {0};
    uint64_t read = 0;
    for (;;) {
        erh_event *event;
        erh_spool_pos pos;
        FUZZ_CHECK(erh_spool_read(&spool, &event, &pos) == ERH_OK, "read: %s", spool.errstr);
        if (!event)
            break;
        read++;
        /* What was read packs and reads back to the same event. */
        packed.len = 0;
        FUZZ_CHECK(erh_event_pack(event, &packed) == ERH_OK, "pack");
        erh_event *again;
        FUZZ_CHECK(erh_event_unpack(packed.data, packed.len, &again) == ERH_OK, "unpack of a packed event");
        size_t first_len = packed.len;
        FUZZ_CHECK(erh_event_pack(again, &packed) == ERH_OK, "pack");
        FUZZ_CHECK(packed.len == 2 * first_len && memcmp(packed.data, packed.data + first_len, first_len) == 0,
                   "record at %llu changes when packed again", (unsigned long long)pos.offset);
        erh_event_free(again);
        erh_event_free(event);
        erh_spool_release(&spool, pos);
    }
    FUZZ_CHECK(read <= pending && (read == pending || spool.cut > 0), "read %llu of %llu, none cut",
               (unsigned long long)read, (unsigned long long)pending);
    FUZZ_CHECK(erh_spool_pending(&spool) == 0, "records left after releasing all");
    erh_buf_free(&packed);
    erh_spool_close(&spool, NULL);
    unlink(segment);
    return 0;
}
