/* The benchmark's fencing procedure: prints its first argument and CLOCK_MONOTONIC in nanoseconds, the clock
   behind Node's process.hrtime.bigint(), so that the time from a write to a procedure's first instruction can
   be measured across processes. */
#include <stdio.h>
#include <time.h>

int main(int argc, char **argv) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  printf("%s %lld\n", argc > 1 ? argv[1] : "-", (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
  return 0;
}
