/* The freeze benchmark's reader: prints CLOCK_MONOTONIC in nanoseconds, flushes, then opens and reads the
   file it is given. Under comet watch with fanotify, the open is where it is frozen. */
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  printf("%lld\n", (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
  fflush(stdout);
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) return 1;
  char buffer[4096];
  ssize_t count = read(fd, buffer, sizeof buffer);
  clock_gettime(CLOCK_MONOTONIC, &now);
  printf("%lld %zd\n", (long long)now.tv_sec * 1000000000LL + now.tv_nsec, count);
  close(fd);
  return 0;
}
