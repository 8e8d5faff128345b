/* What the C helpers of the benchmark share: failing with a message, reading counts, and the two
 * clocks every helper reports (wall time and its own CPU time). */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

/* Print "PROGRAM: doing: why" on stderr and exit 1. */
_Noreturn void die(const char *doing, const char *why);
/* A positive integer, or die naming what. */
unsigned long parse_count(const char *text, const char *what);
/* Monotonic wall clock, in seconds. */
double now_s(void);
/* CPU time (user + system) of this process so far, in seconds. */
double cpu_s(void);

#endif
