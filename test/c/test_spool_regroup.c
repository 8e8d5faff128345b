#include "check_run.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "erh_spool_regroup.h"

#define CLIENTS 12
#define PER_CLIENT 30

static char dir[64];

/* fdatasync fails once this many more calls have passed, as on a disk that fills up or reports an
 * error (linked with --wrap=fdatasync); negative: never. */
static int syncs_until_failure = -1;
int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
int __wrap_fdatasync(int fd)
{
    if (syncs_until_failure == 0) {
        errno = EIO;
        return -1;
    }
    if (syncs_until_failure > 0)
        syncs_until_failure--;
    return __real_fdatasync(fd);
}
static const erh_spool_options options = {.max_bytes = 1 << 20, .segment_bytes = 4096, .sync = ERH_SPOOL_SYNC_NEVER};

static void make_dir(void)
{
    check_make_dir(dir, "erh_regroup_test_");
}

static void remove_dir(void)
{
    check_remove_dir(dir);
}

static void path_in(char *out, size_t len, const char *base, const char *name)
{
    ck_assert_int_lt(snprintf(out, len, "%s/%s", base, name), (int)len);
}

static void client_name(char name[16], unsigned client)
{
    snprintf(name, 16, "client-%u", client);
}

static unsigned publisher_of(unsigned client, unsigned publishers)
{
    char name[16];
    client_name(name, client);
    return erh_event_publisher_of((erh_bytes){name, strlen(name)}, publishers);
}

/* Append the events first..first+count-1 of client to the spool folder at path. */
static void spool_events(const char *path, unsigned client, uint64_t first, uint64_t count)
{
    char name[16];
    client_name(name, client);
    erh_spool spool;
    ck_assert_int_eq(erh_spool_lock(&spool, path), ERH_OK);
    ck_assert_msg(erh_spool_open(&spool, &options) == ERH_OK, "open: %s", spool.errstr);
    for (uint64_t seq = first; seq < first + count; seq++) {
        erh_event event = {.type = ERH_EV_PUBLISH, .seq = seq, .boot_id = 7, .timestamp = 1700000000000};
        event.field[ERH_F_CLIENTID] = (erh_bytes){name, strlen(name)};
        event.field[ERH_F_PAYLOAD] = (erh_bytes){"payload", 7};
        erh_spool_pos pos;
        ck_assert_int_eq(erh_spool_append(&spool, &event, false, &pos), ERH_OK);
    }
    ck_assert_int_eq(erh_spool_close(&spool, NULL), ERH_OK);
}

/* The folders a spool with publishers publishers wrote: each client's events, 0..PER_CLIENT-1, in
 * the folder of its publisher, interleaved across clients as they would arrive. */
static void spool_as_if_written_by(const char *base, unsigned publishers)
{
    for (uint64_t round = 0; round < PER_CLIENT; round += 10)
        for (unsigned client = 0; client < CLIENTS; client++) {
            char path[256], index[16];
            snprintf(index, sizeof index, "%u", publisher_of(client, publishers));
            path_in(path, sizeof path, base, index);
            spool_events(path, client, round, 10);
        }
}

/* Read a folder's events: each must be in the folder of its client's publisher, and each client's
 * seqs must follow next_seq in order (with dupes, a repeat of one seen already may come too).
 * Returns how many were read. */
static uint64_t check_folder(const char *base, unsigned index, unsigned publishers, uint64_t next_seq[CLIENTS],
                             bool dupes)
{
    char path[256], name[16];
    snprintf(name, sizeof name, "%u", index);
    path_in(path, sizeof path, base, name);
    erh_spool spool;
    ck_assert_int_eq(erh_spool_lock(&spool, path), ERH_OK);
    ck_assert_int_eq(erh_spool_open(&spool, &options), ERH_OK);
    uint64_t read = 0;
    for (;;) {
        erh_event *event;
        erh_spool_pos pos;
        ck_assert_int_eq(erh_spool_read(&spool, &event, &pos), ERH_OK);
        if (!event)
            break;
        erh_bytes id = event->field[ERH_F_CLIENTID];
        char text[16] = "";
        unsigned client = CLIENTS;
        ck_assert_uint_lt(id.len, sizeof text);
        memcpy(text, id.data, id.len);
        ck_assert_int_eq(sscanf(text, "client-%u", &client), 1);
        ck_assert_uint_lt(client, CLIENTS);
        ck_assert_uint_eq(erh_event_publisher_of(event->field[ERH_F_CLIENTID], publishers), index);
        if (!dupes || event->seq >= next_seq[client])
            ck_assert_uint_eq(event->seq, next_seq[client]++); /* else a copy of one seen already */
        erh_event_free(event);
        read++;
    }
    ck_assert_int_eq(erh_spool_close(&spool, NULL), ERH_OK);
    return read;
}

/* Every client's events, each once and in order, in the folders of publishers; returns the total. */
static uint64_t check_all(unsigned publishers, bool dupes)
{
    uint64_t next_seq[CLIENTS] = {0}, total = 0;
    for (unsigned i = 0; i < publishers; i++)
        total += check_folder(dir, i, publishers, next_seq, dupes);
    for (unsigned client = 0; client < CLIENTS; client++)
        ck_assert_uint_eq(next_seq[client], PER_CLIENT);
    return total;
}

static bool holds_segments(const char *base, const char *name)
{
    char path[256];
    path_in(path, sizeof path, base, name);
    return erh_spool_holds_segments(path);
}

static bool exists(const char *base, const char *name)
{
    char path[256];
    struct stat info;
    path_in(path, sizeof path, base, name);
    return stat(path, &info) == 0;
}

static unsigned marker(void)
{
    char path[256];
    unsigned publishers = 0;
    path_in(path, sizeof path, dir, "PUBLISHERS");
    FILE *file = fopen(path, "r");
    ck_assert_ptr_nonnull(file);
    ck_assert_int_eq(fscanf(file, "%u", &publishers), 1);
    fclose(file);
    return publishers;
}

static erh_regroup_result regroup_of(const char *current, const char *previous, unsigned publishers)
{
    erh_regroup_result result;
    char errstr[256] = "";
    ck_assert_msg(erh_spool_regroup(current, previous, publishers, &options, &result, errstr, sizeof errstr) == ERH_OK,
                  "regroup: %s", errstr);
    return result;
}

static erh_regroup_result regroup(const char *previous, unsigned publishers)
{
    return regroup_of(dir, previous, publishers);
}

/* Lock base/name as another instance would. */
static void hold(erh_spool *held, const char *base, const char *name)
{
    char path[256];
    path_in(path, sizeof path, base, name);
    ck_assert_int_eq(erh_spool_lock(held, path), ERH_OK);
}

/* A regroup of current that is not expected to succeed: its status, and errstr why. */
static erh_status try_regroup(const char *current, const char *previous, unsigned publishers, char errstr[256])
{
    erh_regroup_result result;
    errstr[0] = '\0';
    return erh_spool_regroup(current, previous, publishers, &options, &result, errstr, 256);
}

START_TEST(fewer_publishers_take_the_events_of_the_removed_ones_in_client_order)
{
    make_dir();
    ck_assert_uint_eq(regroup(NULL, 4).folders, 0); /* a new spool: only marked */
    ck_assert_uint_eq(marker(), 4);
    spool_as_if_written_by(dir, 4);
    erh_regroup_result result = regroup(NULL, 2);
    ck_assert_uint_eq(result.events, CLIENTS * PER_CLIENT);
    ck_assert_uint_eq(result.cut, 0);
    ck_assert_uint_eq(marker(), 2);
    ck_assert(!holds_segments(dir, "2") && !holds_segments(dir, "3"));
    ck_assert(!exists(dir, "regroup"));
    ck_assert_uint_eq(check_all(2, false), CLIENTS * PER_CLIENT);
    remove_dir();
}
END_TEST

START_TEST(more_publishers_take_their_clients_events_when_the_marker_says_the_count_changed)
{
    make_dir();
    regroup(NULL, 1);
    spool_as_if_written_by(dir, 1);
    erh_regroup_result result = regroup(NULL, 3);
    ck_assert_uint_eq(result.events, CLIENTS * PER_CLIENT);
    ck_assert_uint_eq(result.folders, 1);
    ck_assert_uint_eq(check_all(3, false), CLIENTS * PER_CLIENT);
    remove_dir();
}
END_TEST

START_TEST(the_same_count_moves_nothing)
{
    make_dir();
    regroup(NULL, 3);
    spool_as_if_written_by(dir, 3);
    struct stat before, after;
    char segment[256];
    snprintf(segment, sizeof segment, "%s/%u/00000000000000000001.seg", dir, publisher_of(0, 3));
    ck_assert_int_eq(stat(segment, &before), 0);
    erh_regroup_result result = regroup(NULL, 3);
    ck_assert_uint_eq(result.events, 0);
    ck_assert_uint_eq(result.folders, 0);
    ck_assert_int_eq(stat(segment, &after), 0);
    ck_assert_uint_eq(before.st_ino, after.st_ino);
    ck_assert_uint_eq(check_all(3, false), CLIENTS * PER_CLIENT);
    remove_dir();
}
END_TEST

/* Written before PUBLISHERS existed, for a count nobody knows: regrouped, whether the count went
 * down or up. */
START_TEST(an_unmarked_spool_is_regrouped)
{
    make_dir();
    spool_as_if_written_by(dir, 3);
    ck_assert(!exists(dir, "PUBLISHERS"));
    ck_assert_uint_eq(regroup(NULL, 2).events, CLIENTS * PER_CLIENT);
    ck_assert_uint_eq(check_all(2, false), CLIENTS * PER_CLIENT);
    remove_dir();

    make_dir();
    spool_as_if_written_by(dir, 2);
    ck_assert_uint_eq(regroup(NULL, 4).events, CLIENTS * PER_CLIENT);
    ck_assert_uint_eq(marker(), 4);
    ck_assert_uint_eq(check_all(4, false), CLIENTS * PER_CLIENT);
    remove_dir();
}
END_TEST

/* Another instance runs on the folders: the count it writes them for is not changed under it. */
START_TEST(the_count_is_not_marked_while_another_instance_holds_a_folder)
{
    make_dir();
    regroup(NULL, 2);
    erh_spool held;
    char errstr[256];
    hold(&held, dir, "1");
    ck_assert_int_eq(try_regroup(dir, NULL, 4, errstr), ERH_ERR_BUSY);
    ck_assert_uint_eq(marker(), 2);
    ck_assert_int_eq(erh_spool_close(&held, NULL), ERH_OK);
    remove_dir();
}
END_TEST

/* A crash while a taken-in folder was deleted left it without segments in regroup/: the next
 * regroup numbers past it and clears it. */
START_TEST(a_folder_left_empty_in_staging_is_cleared)
{
    make_dir();
    char staging[256], leftover[256];
    path_in(staging, sizeof staging, dir, "regroup");
    path_in(leftover, sizeof leftover, staging, "0");
    erh_spool spool;
    ck_assert_int_eq(erh_spool_lock(&spool, leftover), ERH_OK); /* LOCK only */
    ck_assert_int_eq(erh_spool_close(&spool, NULL), ERH_OK);
    spool_as_if_written_by(dir, 3);
    ck_assert_uint_eq(regroup(NULL, 2).events, CLIENTS * PER_CLIENT);
    ck_assert(!exists(dir, "regroup"));
    ck_assert_uint_eq(check_all(2, false), CLIENTS * PER_CLIENT);
    remove_dir();
}
END_TEST

/* previous_base: where the previous spool_dir is made, on dir's file system (moved by renames) or
 * on another one (read where it is). */
static void take_in_a_previous_spool_dir(const char *previous_base)
{
    make_dir();
    char previous[256];
    ck_assert_int_lt(snprintf(previous, sizeof previous, "%s/erh_regroup_previous_XXXXXX", previous_base),
                     (int)sizeof previous);
    ck_assert_ptr_nonnull(mkdtemp(previous));
    char current[sizeof dir];
    strcpy(current, dir);
    /* The current folder holds the first 10 events of each client, written for 1 publisher; the
     * previous one the other 20, written for 2. */
    regroup(NULL, 1);
    for (unsigned client = 0; client < CLIENTS; client++) {
        char path[256];
        path_in(path, sizeof path, dir, "0");
        spool_events(path, client, 0, 10);
        char index[16];
        snprintf(index, sizeof index, "%u", publisher_of(client, 2));
        path_in(path, sizeof path, previous, index);
        spool_events(path, client, 10, 20);
    }
    erh_regroup_result result = regroup(previous, 1);
    ck_assert_uint_eq(result.events, CLIENTS * 20);
    ck_assert(!holds_segments(previous, "0") && !holds_segments(previous, "1"));
    ck_assert_uint_eq(check_all(1, false), CLIENTS * PER_CLIENT);
    /* The same folder given as the previous one is not taken in twice. */
    ck_assert_uint_eq(regroup(current, 1).events, 0);
    remove_dir();
    check_remove_dir(previous);
}

START_TEST(a_previous_spool_dir_is_taken_in_after_what_the_folders_hold)
{
    take_in_a_previous_spool_dir(dir);
}
END_TEST

/* /dev/shm is a tmpfs on most Linux machines: another file system than /tmp. Where it is not, the
 * same happens by renames. */
START_TEST(a_previous_spool_dir_on_another_file_system_is_read_where_it_is)
{
    take_in_a_previous_spool_dir(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
}
END_TEST

/* A switch to another spool_dir fails half way (here a folder held): the previous configuration,
 * started again with the failed one's folder as previous, takes back what moved. */
START_TEST(what_a_failed_switch_moved_goes_back)
{
    make_dir();
    char previous[256];
    path_in(previous, sizeof previous, dir, "a");
    char current[256];
    path_in(current, sizeof current, dir, "b");
    for (unsigned client = 0; client < CLIENTS; client++) {
        char path[256], index[16];
        snprintf(index, sizeof index, "%u", publisher_of(client, 2));
        path_in(path, sizeof path, previous, index);
        spool_events(path, client, 0, PER_CLIENT);
    }
    erh_spool held;
    char errstr[256];
    hold(&held, previous, "1");
    ck_assert_int_eq(try_regroup(current, previous, 3, errstr), ERH_ERR_BUSY);
    ck_assert_int_eq(erh_spool_close(&held, NULL), ERH_OK);
    ck_assert_uint_eq(regroup_of(previous, current, 2).events, CLIENTS * PER_CLIENT);
    uint64_t next_seq[CLIENTS] = {0}, total = 0;
    for (unsigned i = 0; i < 2; i++)
        total += check_folder(previous, i, 2, next_seq, false);
    ck_assert_uint_eq(total, CLIENTS * PER_CLIENT);
    remove_dir();
}
END_TEST

/* A crash after a regroup moved folder 0 aside and copied part of it back: the next regroup
 * finishes it. The copied events arrive twice, each client's still in order. */
START_TEST(a_regroup_cut_short_is_finished_by_the_next)
{
    make_dir();
    char staging[256];
    path_in(staging, sizeof staging, dir, "regroup");
    regroup(NULL, 2);
    spool_as_if_written_by(staging, 1); /* all in regroup/0 */
    for (unsigned client = 0; client < CLIENTS; client++) {
        char path[256], index[16];
        snprintf(index, sizeof index, "%u", publisher_of(client, 2));
        path_in(path, sizeof path, dir, index);
        spool_events(path, client, 0, 5);
    }
    erh_regroup_result result = regroup(NULL, 2);
    ck_assert_uint_eq(result.events, CLIENTS * (PER_CLIENT + 5));
    ck_assert(!exists(dir, "regroup"));
    ck_assert_uint_eq(check_all(2, true), CLIENTS * (PER_CLIENT + 5));
    remove_dir();
}
END_TEST

START_TEST(a_folder_another_instance_holds_is_not_taken)
{
    make_dir();
    regroup(NULL, 3);
    spool_as_if_written_by(dir, 3);
    erh_spool held;
    char errstr[256];
    hold(&held, dir, "2");
    ck_assert_int_eq(try_regroup(dir, NULL, 1, errstr), ERH_ERR_BUSY);
    ck_assert_ptr_nonnull(strstr(errstr, "in use"));
    ck_assert(holds_segments(dir, "2"));
    ck_assert_int_eq(erh_spool_close(&held, NULL), ERH_OK);
    /* Released, the next start finishes the move. */
    ck_assert_uint_eq(regroup(NULL, 1).events, CLIENTS * PER_CLIENT);
    ck_assert_uint_eq(check_all(1, false), CLIENTS * PER_CLIENT);
    remove_dir();
}
END_TEST

/* Events on disk are never thrown away: the new spools take them all, past their bound. */
START_TEST(the_bound_does_not_refuse_events_already_on_disk)
{
    make_dir();
    regroup(NULL, 2);
    spool_as_if_written_by(dir, 2);
    erh_spool_options small = options;
    small.max_bytes = 1024;
    erh_regroup_result result;
    char errstr[256] = "";
    ck_assert_int_eq(erh_spool_regroup(dir, NULL, 1, &small, &result, errstr, sizeof errstr), ERH_OK);
    ck_assert_uint_eq(result.events, CLIENTS * PER_CLIENT);
    ck_assert_uint_eq(check_all(1, false), CLIENTS * PER_CLIENT);
    remove_dir();
}
END_TEST

START_TEST(a_torn_record_in_a_moved_folder_is_cut_and_counted)
{
    make_dir();
    regroup(NULL, 2);
    char path[256];
    path_in(path, sizeof path, dir, "1");
    spool_events(path, 0, 0, 3);
    path_in(path, sizeof path, dir, "1/00000000000000000001.seg");
    FILE *segment = fopen(path, "a");
    ck_assert_ptr_nonnull(segment);
    fputs("torn", segment);
    fclose(segment);
    erh_regroup_result result = regroup(NULL, 1);
    ck_assert_uint_eq(result.events, 3);
    ck_assert_uint_eq(result.cut, 1);
    remove_dir();
}
END_TEST

static int count_segments(const char *path)
{
    DIR *listing = opendir(path);
    int segments = 0;
    for (struct dirent *entry; listing && (entry = readdir(listing));)
        segments += strstr(entry->d_name, ".seg") != NULL;
    if (listing)
        closedir(listing);
    return segments;
}

/* A segment copied and synced is deleted at once, so a regroup needs room for about one segment
 * more than the spool; a failure later leaves the rest, and the next regroup moves it. */
START_TEST(a_copied_segment_is_deleted_before_the_next_is_read)
{
    make_dir();
    spool_as_if_written_by(dir, 1);
    char source[256];
    path_in(source, sizeof source, dir, "0");
    int segments = count_segments(source);
    ck_assert_int_gt(segments, 3);
    syncs_until_failure = 4; /* a few segments in */
    char errstr[256];
    ck_assert_int_eq(try_regroup(dir, NULL, 2, errstr), ERH_ERR_SYSTEM);
    syncs_until_failure = -1;
    char staged[256];
    path_in(staged, sizeof staged, dir, "regroup/0");
    int left = count_segments(staged);
    ck_assert_int_gt(left, 0);
    ck_assert_int_lt(left, segments);
    ck_assert_uint_eq(regroup(NULL, 2).folders, 3); /* the rest, and the two with copies made before */
    check_all(2, true);
    ck_assert(!exists(dir, "regroup"));
    remove_dir();
}
END_TEST

/* A switch reading a previous folder on another mount (where there is one) fails half way: the next
 * start, given no previous folder, finds it named in regroup/READING and finishes, in order. */
START_TEST(a_previous_folder_read_where_it_is_is_finished_by_the_next_start)
{
    make_dir();
    char previous[256];
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    ck_assert_int_lt(snprintf(previous, sizeof previous, "%s/erh_regroup_previous_XXXXXX", base), (int)sizeof previous);
    ck_assert_ptr_nonnull(mkdtemp(previous));
    spool_as_if_written_by(previous, 1);
    char errstr[256];
    syncs_until_failure = 4;
    ck_assert_int_eq(try_regroup(dir, previous, 2, errstr), ERH_ERR_SYSTEM);
    syncs_until_failure = -1;
    struct stat here, there;
    ck_assert(stat(dir, &here) == 0 && stat(previous, &there) == 0);
    ck_assert_int_eq(exists(dir, "regroup/READING"), here.st_dev != there.st_dev);
    regroup(NULL, 2);
    check_all(2, true);
    ck_assert(!holds_segments(previous, "0"));
    ck_assert(!exists(dir, "regroup"));
    remove_dir();
    check_remove_dir(previous);
}
END_TEST

/* Another file in a folder keeps the folder, not its events. */
START_TEST(a_folder_holding_another_file_is_emptied_and_left)
{
    make_dir();
    spool_as_if_written_by(dir, 3);
    char notes[256];
    path_in(notes, sizeof notes, dir, "2/notes.txt");
    FILE *file = fopen(notes, "w");
    ck_assert_ptr_nonnull(file);
    fclose(file);
    ck_assert_uint_eq(regroup(NULL, 2).events, CLIENTS * PER_CLIENT);
    ck_assert_uint_eq(check_all(2, false), CLIENTS * PER_CLIENT);
    ck_assert(exists(dir, "regroup/2/notes.txt"));
    ck_assert_uint_eq(regroup(NULL, 2).events, 0);
    remove_dir();
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, fewer_publishers_take_the_events_of_the_removed_ones_in_client_order);
    tcase_add_test(tc, more_publishers_take_their_clients_events_when_the_marker_says_the_count_changed);
    tcase_add_test(tc, the_same_count_moves_nothing);
    tcase_add_test(tc, an_unmarked_spool_is_regrouped);
    tcase_add_test(tc, the_count_is_not_marked_while_another_instance_holds_a_folder);
    tcase_add_test(tc, a_folder_left_empty_in_staging_is_cleared);
    tcase_add_test(tc, a_previous_spool_dir_is_taken_in_after_what_the_folders_hold);
    tcase_add_test(tc, a_previous_spool_dir_on_another_file_system_is_read_where_it_is);
    tcase_add_test(tc, what_a_failed_switch_moved_goes_back);
    tcase_add_test(tc, a_copied_segment_is_deleted_before_the_next_is_read);
    tcase_add_test(tc, a_folder_holding_another_file_is_emptied_and_left);
    tcase_add_test(tc, a_previous_folder_read_where_it_is_is_finished_by_the_next_start);
    tcase_add_test(tc, a_regroup_cut_short_is_finished_by_the_next);
    tcase_add_test(tc, a_folder_another_instance_holds_is_not_taken);
    tcase_add_test(tc, the_bound_does_not_refuse_events_already_on_disk);
    tcase_add_test(tc, a_torn_record_in_a_moved_folder_is_cut_and_counted);
}

int main(void)
{
    return check_run("spool_regroup", add_tests);
}
