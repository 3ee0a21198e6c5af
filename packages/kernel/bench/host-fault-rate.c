/*
 * The host kernel's own rate of anonymous 4 KiB write faults, for comparison with the simulator's host
 * speed (bench/faults.ts): maps private anonymous memory with transparent huge pages off, stores one byte to
 * every page, and reports the best of its passes, in wall time and in this process's CPU time (the faults
 * are system time of this process). Built and run by bench/host-fault-rate.ts.
 *
 * Usage: host-fault-rate [pages per pass (default 65536)] [passes (default 5)]
 *
 * It also prints two probes of how loaded the host is, because a loaded host inflates the kernel's fault
 * far more than it inflates the simulator (see packages/kernel/README.md): the CPU time of one system call
 * (getppid: the exception entry and exit every fault pays) and of clearing one 4 KiB page that is not in any
 * cache (memset over a populated 128 MiB buffer: the clear_page() every anonymous fault pays).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double nsOf(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  const long pagesArg = argc > 1 ? atol(argv[1]) : 65536;
  const int passes = argc > 2 ? atoi(argv[2]) : 5;
  if (pagesArg < 1 || passes < 1) {
    fprintf(stderr, "usage: host-fault-rate [pages per pass >= 1] [passes >= 1]\n");
    return 2;
  }
  const size_t pages = (size_t)pagesArg;
  double best = 1e18, bestCpu = 1e18;
  if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) perror("prctl(PR_SET_THP_DISABLE)");
  for (int pass = 0; pass < passes; pass++) {
    volatile char *p = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    const double c0 = nsOf(CLOCK_PROCESS_CPUTIME_ID), t0 = nsOf(CLOCK_MONOTONIC);
    for (size_t i = 0; i < pages; i++) p[i * 4096] = 0x5a;
    const double t1 = nsOf(CLOCK_MONOTONIC), c1 = nsOf(CLOCK_PROCESS_CPUTIME_ID);
    if ((t1 - t0) / (double)pages < best) best = (t1 - t0) / (double)pages;
    if ((c1 - c0) / (double)pages < bestCpu) bestCpu = (c1 - c0) / (double)pages;
    munmap((void *)p, pages * 4096);
  }
  printf("host kernel: %.0f ns per anonymous 4 KiB write fault = %.0f faults/s (best of %d passes of %zu); "
         "CPU time %.0f ns per fault\n",
         best, 1e9 / best, passes, pages, bestCpu);

  const int calls = 100000;
  double c0 = nsOf(CLOCK_PROCESS_CPUTIME_ID);
  for (int i = 0; i < calls; i++) syscall(SYS_getppid);
  const double syscallNs = (nsOf(CLOCK_PROCESS_CPUTIME_ID) - c0) / calls;
  const size_t bufPages = 32768;
  char *b = mmap(NULL, bufPages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (b == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  c0 = nsOf(CLOCK_PROCESS_CPUTIME_ID);
  for (size_t i = 0; i < bufPages; i++) memset(b + i * 4096, (int)i, 4096);
  const double clearNs = (nsOf(CLOCK_PROCESS_CPUTIME_ID) - c0) / (double)bufPages;
  munmap(b, bufPages * 4096);
  printf("host probes: system call %.0f ns CPU; 4 KiB clear from memory %.0f ns CPU\n", syscallNs, clearNs);
  return 0;
}
