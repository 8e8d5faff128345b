/* The main() of every C test file: its tests in one suite of one case, run, and the exit status
 * saying whether all passed. Under valgrind the Makefile sets CK_FORK=no, so a leak or a bad access
 * belongs to the test that made it. */
#ifndef CHECK_RUN_H
#define CHECK_RUN_H

#include <check.h>

int check_run(const char *name, void (*add_tests)(TCase *tc));

/* A new empty folder /tmp/<prefix>XXXXXX, its path written to dir (64 bytes), for a test's files. */
void check_make_dir(char dir[64], const char *prefix);
/* Remove it and all it holds. */
void check_remove_dir(const char *dir);

#endif
