/*
 * The host kernel's own rate of anonymous 4 KiB write faults, for comparison with the simulator's host
 * speed (bench/faults.ts): maps 256 MiB of private anonymous memory with transparent huge pages off,
 * stores one byte to every page, and reports the best of five rounds, in wall time and in this process's CPU
 * time (the faults are system time of this process; CPU time is what a loaded host distorts least). Built and
 * run by bench/host-fault-rate.ts.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>

int main(void) {
  const size_t pages = 65536;
  double best = 1e18, bestCpu = 1e18;
  if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) perror("prctl(PR_SET_THP_DISABLE)");
  for (int round = 0; round < 5; round++) {
    volatile char *p = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    struct timespec t0, t1, c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < pages; i++) p[i * 4096] = 0x5a;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)pages;
    double cpu = ((double)(c1.tv_sec - c0.tv_sec) * 1e9 + (double)(c1.tv_nsec - c0.tv_nsec)) / (double)pages;
    if (ns < best) best = ns;
    if (cpu < bestCpu) bestCpu = cpu;
    munmap((void *)p, pages * 4096);
  }
  printf("host kernel: %.0f ns per anonymous 4 KiB write fault = %.0f faults/s (best of 5 rounds of %zu); "
         "CPU time %.0f ns per fault\n",
         best, 1e9 / best, pages, bestCpu);
  return 0;
}
