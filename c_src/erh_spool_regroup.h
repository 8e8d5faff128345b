/* Spool folders made to fit a new configuration, before the publishers open them.
 *
 * Publisher i reads <dir>/<i>, and a client's events go to publisher erh_event_publisher_of(client,
 * publishers). After `publishers` changes, events spooled under the old count wait in folders whose
 * publisher now carries other clients, or in folders no publisher reads; after spool_dir changes,
 * in a folder nobody reads. A regroup moves each of them, in order, to the end of the folder of the
 * publisher that carries its client now: none is stranded, and a client's events still leave in
 * order, the spooled ones before the new ones.
 *
 * <dir>/PUBLISHERS names the count the folders were written for. A regroup first locks the folder of
 * every publisher, so no other instance writes there meanwhile. When the count differs (or is not
 * known, or a folder past it holds segments), every numbered folder that holds segments moves to
 * <dir>/regroup/<n>, a rename: nothing is copied yet. The folders of a previous spool_dir move there
 * too when they are on the same mount, and are read where they are otherwise (regroup/READING names
 * such a folder meanwhile, for the start after a crash). Then each folder is
 * read, oldest first, its events appended to their new folders, and each of its segments deleted
 * once those hold its events on disk (so a regroup needs room for about one segment more than the
 * spool); PUBLISHERS is written last. A crash meanwhile leaves regroup/ for the next start to
 * finish: the next start stages the copies made so far too, and reads them first. Events of the
 * segment being copied are then sent twice, under the same message ids. */
#ifndef ERH_SPOOL_REGROUP_H
#define ERH_SPOOL_REGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "erh_spool.h"

typedef struct erh_regroup_result {
    uint64_t events;     /* events moved */
    unsigned folders;    /* folders read, then deleted */
    uint64_t cut;        /* torn or corrupt records cut while reading them */
    bool previous_moved; /* some of previous_dir's folders moved or were read (if only in part) */
} erh_regroup_result;

/* Regroup dir's folders for publishers, and take in previous_dir's (NULL, a folder that does not
 * exist, or dir itself: none). options are the publishers' (erh_publisher_spool_options); a regrouped
 * spool may pass options->max_bytes, as events on disk are never thrown away: it then takes no more
 * until it drains. Runs before any publisher locks its folder. On error errstr says why, and the
 * events stay on disk for the next start. */
erh_status erh_spool_regroup(const char *dir, const char *previous_dir, unsigned publishers,
                             const erh_spool_options *options, erh_regroup_result *result, char *errstr,
                             size_t errstr_len);

#endif
