/*
 * spf calibrate: an anonymous fault end to end on this host, the figure the model's single-CPU fault is
 * compared with: maps private anonymous memory with transparent huge pages off, stores one byte to every
 * page (one write fault each: exception entry, page allocation and clearing, memcg and LRU, the PTE, exit),
 * unmaps; the faulting loop alone is timed, in this process's CPU time (the faults are its system time), so
 * other jobs sharing the CPU do not count. Prints the best of its passes in ns per fault.
 * Output: "anon_fault_ns <ns>".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>

#define PAGES 8192
#define PASSES 8

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(void) {
  prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
  double best = 1e18;
  for (int pass = 0; pass < PASSES; pass++) {
    volatile char *p = mmap(NULL, (size_t)PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    double t0 = now();
    for (size_t i = 0; i < PAGES; i++) p[i * 4096] = 0x5a;
    double ns = (now() - t0) / PAGES;
    if (ns < best) best = ns;
    munmap((void *)p, (size_t)PAGES * 4096);
  }
  printf("anon_fault_ns %.1f\n", best);
  return 0;
}
