/*
 * spf calibrate: what the cost model's `syscall` stands for on this host: the round trip of getppid(2), a
 * system call that does almost nothing, so the figure is the entry and exit with whatever mitigations this
 * kernel runs. Prints the best of its passes in ns of this process's CPU time (user + system) per call, so
 * that other jobs sharing the CPU do not count. Output: "syscall_ns <ns>".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CALLS 200000
#define PASSES 7

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(void) {
  double best = 1e18;
  for (int pass = 0; pass < PASSES; pass++) {
    double t0 = now();
    for (int i = 0; i < CALLS; i++) syscall(SYS_getppid);
    double ns = (now() - t0) / CALLS;
    if (ns < best) best = ns;
  }
  printf("syscall_ns %.1f\n", best);
  return 0;
}
