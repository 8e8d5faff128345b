#include "check_run.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "erh_spool.h"

#define BYTES(literal) ((erh_bytes){literal, sizeof literal - 1})

static char dir[64];

/* fdatasync fails while this is set, as on a disk that reports an I/O error (linked with
 * --wrap=fdatasync). */
static bool fail_sync;
int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
int __wrap_fdatasync(int fd)
{
    if (fail_sync) {
        errno = EIO;
        return -1;
    }
    return __real_fdatasync(fd);
}
static const erh_spool_options options = {.max_bytes = 1 << 20, .segment_bytes = 1 << 16, .sync = ERH_SPOOL_SYNC_NEVER};

static void make_dir(void)
{
    check_make_dir(dir, "erh_spool_test_");
}

static void remove_dir(void)
{
    check_remove_dir(dir);
}

static erh_event event_numbered(uint64_t seq, erh_bytes payload)
{
    erh_event event = {.type = ERH_EV_PUBLISH, .seq = seq, .boot_id = 0xABCDEF0123456789u, .timestamp = 1700000000000,
                       .qos = 2, .retain = true};
    event.field[ERH_F_CLIENTID] = BYTES("dev-1");
    event.field[ERH_F_TOPIC] = BYTES("a/b");
    event.field[ERH_F_PAYLOAD] = payload;
    return event;
}

static void open_spool(erh_spool *spool, const erh_spool_options *opts)
{
    ck_assert_int_eq(erh_spool_lock(spool, dir), ERH_OK);
    ck_assert_msg(erh_spool_open(spool, opts) == ERH_OK, "open: %s", spool->errstr);
}

static void append_many(erh_spool *spool, uint64_t first, uint64_t count)
{
    for (uint64_t seq = first; seq < first + count; seq++) {
        erh_event event = event_numbered(seq, BYTES("payload"));
        erh_spool_pos pos;
        ck_assert_int_eq(erh_spool_append(spool, &event, false, &pos), ERH_OK);
    }
}

/* Read one event, check its seq, and return its position. */
static erh_spool_pos read_seq(erh_spool *spool, uint64_t seq)
{
    erh_event *event;
    erh_spool_pos pos;
    ck_assert_int_eq(erh_spool_read(spool, &event, &pos), ERH_OK);
    ck_assert_ptr_nonnull(event);
    ck_assert_uint_eq(event->seq, seq);
    erh_event_free(event);
    return pos;
}

static void assert_all_read(erh_spool *spool)
{
    erh_event *event;
    erh_spool_pos pos;
    ck_assert_int_eq(erh_spool_read(spool, &event, &pos), ERH_OK);
    ck_assert_ptr_null(event);
}

static int segment_files(void)
{
    char command[160];
    snprintf(command, sizeof command, "exit $(ls '%s' | grep -c '\\.seg$')", dir);
    return WEXITSTATUS(system(command));
}

/* The only segment file, for tests that damage it. */
static void segment_file(char path[256])
{
    snprintf(path, 256, "%s/%020d.seg", dir, 1);
}

/* A new spool folder with three records, closed: the path of its one segment, and its size. */
static off_t closed_spool_of_three(char path[256])
{
    make_dir();
    erh_spool spool;
    open_spool(&spool, &options);
    append_many(&spool, 1, 3);
    ck_assert_int_eq(erh_spool_close(&spool, NULL), ERH_OK);
    segment_file(path);
    struct stat info;
    ck_assert_int_eq(stat(path, &info), 0);
    return info.st_size;
}

START_TEST(event_pack_round_trip_keeps_every_field_and_absence)
{
    erh_event event = event_numbered(7, BYTES("\x00\xff payload"));
    event.field[ERH_F_USERNAME] = (erh_bytes){"", 0}; /* present but empty, unlike an absent one */
    event.connected_at = -5;
    event.peerport = 65535;
    event.dead_letter = true;
    event.payload_omitted = true;
    event.payload_size = 5000000;
    erh_buf buf = {0};
    ck_assert_int_eq(erh_event_pack(&event, &buf), ERH_OK);
    erh_event *back;
    ck_assert_int_eq(erh_event_unpack(buf.data, buf.len, &back), ERH_OK);
    ck_assert_uint_eq(back->seq, 7);
    ck_assert_uint_eq(back->boot_id, event.boot_id);
    ck_assert_int_eq(back->connected_at, -5);
    ck_assert_int_eq(back->peerport, 65535);
    ck_assert_int_eq(back->qos, 2);
    ck_assert(back->retain && back->dead_letter && back->payload_omitted && !back->clean_start);
    ck_assert_uint_eq(back->payload_size, 5000000);
    ck_assert_ptr_nonnull(back->field[ERH_F_USERNAME].data);
    ck_assert_uint_eq(back->field[ERH_F_USERNAME].len, 0);
    ck_assert_ptr_null(back->field[ERH_F_REASON].data);
    ck_assert_mem_eq(back->field[ERH_F_PAYLOAD].data, "\x00\xff payload", 10);
    erh_event_free(back);
    /* Every cut of the packed bytes is refused, never read past. */
    for (size_t len = 0; len < buf.len; len++) {
        ck_assert_int_eq(erh_event_unpack(buf.data, len, &back), ERH_ERR_BADARG);
        ck_assert_ptr_null(back);
    }
    erh_buf_free(&buf);
}
END_TEST

/* A record written before a field was added has fewer fields: the new one reads as absent. Each
 * field is a 4-byte length (ABSENT for none) then its bytes, the last one (proto_ver) absent here. */
START_TEST(a_record_from_before_a_new_field_still_reads)
{
    erh_event event = event_numbered(8, BYTES("p"));
    erh_buf buf = {0};
    ck_assert_int_eq(erh_event_pack(&event, &buf), ERH_OK);
    buf.data[3] = ERH_F_PROTO_VER;
    erh_event *back;
    ck_assert_int_eq(erh_event_unpack(buf.data, buf.len - 4, &back), ERH_OK);
    ck_assert_uint_eq(back->seq, 8);
    ck_assert_mem_eq(back->field[ERH_F_PAYLOAD].data, "p", 1);
    ck_assert_ptr_null(back->field[ERH_F_PROTO_VER].data);
    erh_event_free(back);

    event.field[ERH_F_PROTO_VER] = BYTES("1.2");
    buf.len = 0;
    ck_assert_int_eq(erh_event_pack(&event, &buf), ERH_OK);
    ck_assert_int_eq(erh_event_unpack(buf.data, buf.len, &back), ERH_OK);
    ck_assert_uint_eq(back->field[ERH_F_PROTO_VER].len, 3);
    ck_assert_mem_eq(back->field[ERH_F_PROTO_VER].data, "1.2", 3);
    erh_event_free(back);
    erh_buf_free(&buf);
}
END_TEST

/* With sync always, a record that could not be synced is taken back: the caller keeps the event
 * and writes it again later, and the spool holds it once. */
START_TEST(a_record_that_cannot_be_synced_is_not_kept)
{
    make_dir();
    erh_spool spool;
    const erh_spool_options always = {.max_bytes = 1 << 20, .segment_bytes = 1 << 16, .sync = ERH_SPOOL_SYNC_ALWAYS};
    open_spool(&spool, &always);
    append_many(&spool, 1, 1);
    char path[256];
    segment_file(path);
    struct stat before, after;
    ck_assert_int_eq(stat(path, &before), 0);

    erh_event event = event_numbered(2, BYTES("payload"));
    erh_spool_pos pos;
    fail_sync = true;
    ck_assert_int_eq(erh_spool_append(&spool, &event, false, &pos), ERH_ERR_SYSTEM);
    ck_assert_int_eq(erh_spool_append(&spool, &event, false, &pos), ERH_ERR_SYSTEM);
    fail_sync = false;
    ck_assert_ptr_nonnull(strstr(spool.errstr, "cannot sync"));
    ck_assert_uint_eq(erh_spool_pending(&spool), 1);
    ck_assert_int_eq(stat(path, &after), 0);
    ck_assert_int_eq(after.st_size, before.st_size);

    ck_assert_int_eq(erh_spool_append(&spool, &event, false, &pos), ERH_OK);
    erh_spool_release(&spool, read_seq(&spool, 1));
    erh_spool_release(&spool, read_seq(&spool, 2));
    assert_all_read(&spool);
    ck_assert_uint_eq(erh_spool_pending(&spool), 0);
    ck_assert_int_eq(erh_spool_close(&spool, NULL), ERH_OK);
    remove_dir();
}
END_TEST

START_TEST(events_come_back_in_order_and_released_segments_are_deleted)
{
    make_dir();
    erh_spool spool;
    erh_spool_options small = options;
    small.segment_bytes = 512; /* a few records a segment */
    open_spool(&spool, &small);
    append_many(&spool, 1, 50);
    ck_assert_uint_eq(erh_spool_pending(&spool), 50);
    ck_assert_int_gt(segment_files(), 3);
    for (uint64_t seq = 1; seq <= 50; seq++)
        erh_spool_release(&spool, read_seq(&spool, seq));
    assert_all_read(&spool);
    ck_assert_uint_eq(erh_spool_pending(&spool), 0);
    ck_assert_int_eq(segment_files(), 0);
    ck_assert_uint_eq(spool.bytes, 0);
    ck_assert_int_eq(erh_spool_close(&spool, NULL), ERH_OK);
    remove_dir();
}
END_TEST

START_TEST(reopen_starts_at_head_and_keeps_unconfirmed_records)
{
    make_dir();
    erh_spool spool;
    open_spool(&spool, &options);
    append_many(&spool, 1, 5);
    erh_spool_release(&spool, read_seq(&spool, 1));
    erh_spool_pos second = read_seq(&spool, 2); /* read, never confirmed */
    read_seq(&spool, 3);
    ck_assert_int_eq(erh_spool_close(&spool, &second), ERH_OK);

    open_spool(&spool, &options);
    ck_assert_uint_eq(erh_spool_pending(&spool), 4);
    for (uint64_t seq = 2; seq <= 5; seq++)
        read_seq(&spool, seq);
    assert_all_read(&spool);
    ck_assert_int_eq(erh_spool_close(&spool, NULL), ERH_OK);

    /* Closed with everything read: nothing is sent again. */
    open_spool(&spool, &options);
    assert_all_read(&spool);
    ck_assert_uint_eq(spool.cut, 0);
    ck_assert_int_eq(erh_spool_close(&spool, NULL), ERH_OK);
    remove_dir();
}
END_TEST

START_TEST(a_torn_tail_is_cut_and_counted)
{
    char path[256];
    off_t size = closed_spool_of_three(path);
    ck_assert_int_eq(truncate(path, size - 5), 0);
    erh_spool spool;

    open_spool(&spool, &options);
    ck_assert_uint_eq(spool.cut, 1);
    read_seq(&spool, 1);
    read_seq(&spool, 2);
    assert_all_read(&spool);
    /* Appends go on after the cut. */
    append_many(&spool, 4, 1);
    read_seq(&spool, 4);
    ck_assert_int_eq(erh_spool_close(&spool, NULL), ERH_OK);
    remove_dir();
}
END_TEST

/* CRC-32C by its definition, one bit at a time: what every spool ever written carries. */
static uint32_t crc32c_bitwise(const unsigned char *data, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    while (len--) {
        crc ^= *data++;
        for (int bit = 0; bit < 8; bit++)
            crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
}

static uint32_t little_endian32(const unsigned char *at)
{
    return (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 | (uint32_t)at[3] << 24;
}

/* The records' format stays readable across versions: each record's checksum is CRC-32C. */
START_TEST(every_record_carries_the_crc32c_of_its_payload)
{
    char path[256];
    off_t size = closed_spool_of_three(path);
    unsigned char *file = malloc((size_t)size);
    ck_assert_ptr_nonnull(file);
    FILE *segment = fopen(path, "rb");
    ck_assert_ptr_nonnull(segment);
    ck_assert_uint_eq(fread(file, 1, (size_t)size, segment), (size_t)size);
    fclose(segment);
    ck_assert_uint_eq(crc32c_bitwise((const unsigned char *)"123456789", 9), 0xE3069283u);
    int records = 0;
    for (off_t at = 8; at < size; records++) {
        uint32_t len = little_endian32(file + at);
        ck_assert_uint_eq(little_endian32(file + at + 4), crc32c_bitwise(file + at + 8, len));
        at += 8 + (off_t)len;
    }
    ck_assert_int_eq(records, 3);
    free(file);
    remove_dir();
}
END_TEST

START_TEST(a_corrupt_record_cuts_the_rest_of_its_segment)
{
    char path[256];
    off_t size = closed_spool_of_three(path);
    erh_spool spool;
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    off_t middle = 8 + (size - 8) / 3 + 20; /* inside the second record */
    char byte;
    ck_assert_int_eq(pread(fd, &byte, 1, middle), 1);
    byte ^= 0x40;
    ck_assert_int_eq(pwrite(fd, &byte, 1, middle), 1);
    close(fd);

    open_spool(&spool, &options);
    ck_assert_uint_eq(spool.cut, 1);
    read_seq(&spool, 1);
    assert_all_read(&spool);
    ck_assert_int_eq(erh_spool_close(&spool, NULL), ERH_OK);
    remove_dir();
}
END_TEST

START_TEST(the_byte_bound_refuses_appends_and_changes_nothing)
{
    make_dir();
    erh_spool spool;
    erh_spool_options tiny = options;
    tiny.max_bytes = 1000;
    tiny.segment_bytes = 300;
    open_spool(&spool, &tiny);
    uint64_t accepted = 0;
    erh_status st = ERH_OK;
    while (st == ERH_OK) {
        erh_event event = event_numbered(accepted + 1, BYTES("payload"));
        erh_spool_pos pos;
        st = erh_spool_append(&spool, &event, false, &pos);
        accepted += st == ERH_OK;
    }
    ck_assert_int_eq(st, ERH_ERR_FULL);
    ck_assert_uint_gt(accepted, 3);
    ck_assert_uint_le(spool.bytes, 1000);
    ck_assert_uint_eq(erh_spool_pending(&spool), accepted);
    for (uint64_t seq = 1; seq <= accepted; seq++)
        erh_spool_release(&spool, read_seq(&spool, seq));
    assert_all_read(&spool);
    ck_assert_int_eq(erh_spool_close(&spool, NULL), ERH_OK);
    remove_dir();
}
END_TEST

START_TEST(taken_records_are_not_read_again_but_stay_until_released)
{
    make_dir();
    erh_spool spool;
    open_spool(&spool, &options);
    erh_event event = event_numbered(1, BYTES("x"));
    erh_spool_pos taken;
    ck_assert_int_eq(erh_spool_append(&spool, &event, true, &taken), ERH_OK);
    append_many(&spool, 2, 1);
    read_seq(&spool, 2);
    ck_assert_uint_eq(erh_spool_pending(&spool), 2);
    /* Not allowed while something is unread: it would be read out of order. */
    append_many(&spool, 3, 1);
    erh_spool_pos pos;
    ck_assert_int_eq(erh_spool_append(&spool, &event, true, &pos), ERH_ERR_BADARG);
    /* Closing with the taken record unconfirmed: it is sent again at the next open. */
    ck_assert_int_eq(erh_spool_close(&spool, &taken), ERH_OK);
    open_spool(&spool, &options);
    read_seq(&spool, 1);
    read_seq(&spool, 2);
    read_seq(&spool, 3);
    assert_all_read(&spool);
    ck_assert_int_eq(erh_spool_close(&spool, NULL), ERH_OK);
    remove_dir();
}
END_TEST

START_TEST(a_locked_folder_is_refused)
{
    make_dir();
    erh_spool first, second;
    open_spool(&first, &options);
    ck_assert_int_eq(erh_spool_lock(&second, dir), ERH_ERR_BUSY);
    ck_assert_ptr_nonnull(strstr(second.errstr, "in use"));
    ck_assert_int_eq(erh_spool_close(&second, NULL), ERH_OK);
    ck_assert_int_eq(erh_spool_close(&first, NULL), ERH_OK);
    /* Released on close. */
    open_spool(&second, &options);
    ck_assert_int_eq(erh_spool_close(&second, NULL), ERH_OK);
    remove_dir();
}
END_TEST

START_TEST(an_unwritable_folder_is_an_error_with_its_reason)
{
    erh_spool spool;
    ck_assert_int_eq(erh_spool_lock(&spool, "/proc/erh_no_such/spool"), ERH_ERR_SYSTEM);
    ck_assert_ptr_nonnull(strstr(spool.errstr, "/proc/erh_no_such"));
    ck_assert_int_eq(erh_spool_close(&spool, NULL), ERH_OK);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, event_pack_round_trip_keeps_every_field_and_absence);
    tcase_add_test(tc, a_record_from_before_a_new_field_still_reads);
    tcase_add_test(tc, a_record_that_cannot_be_synced_is_not_kept);
    tcase_add_test(tc, events_come_back_in_order_and_released_segments_are_deleted);
    tcase_add_test(tc, reopen_starts_at_head_and_keeps_unconfirmed_records);
    tcase_add_test(tc, a_torn_tail_is_cut_and_counted);
    tcase_add_test(tc, every_record_carries_the_crc32c_of_its_payload);
    tcase_add_test(tc, a_corrupt_record_cuts_the_rest_of_its_segment);
    tcase_add_test(tc, the_byte_bound_refuses_appends_and_changes_nothing);
    tcase_add_test(tc, taken_records_are_not_read_again_but_stay_until_released);
    tcase_add_test(tc, a_locked_folder_is_refused);
    tcase_add_test(tc, an_unwritable_folder_is_an_error_with_its_reason);
}

int main(void)
{
    return check_run("spool", add_tests);
}
