/*
 * spf calibrate: what the cost model's `zeroPage` and `copyPage` stand for on this host. Clears (memset, as
 * clear_page() stores zeros over a whole page) and copies (memcpy, as copy_page() does for copy-on-write)
 * 4 KiB pages of 64 MiB buffers, so the pages come from memory rather than a cache, as a freshly allocated
 * frame does. Prints the best of its passes in ns of this process's CPU time per page (CPU time, so that
 * other jobs sharing the CPU do not count; the best keeps their cache and memory-bandwidth bursts out).
 * Output: "zero_page_ns <ns>" and "copy_page_ns <ns>".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGES 16384
#define PASSES 5

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(void) {
  char *a = mmap(NULL, (size_t)PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  char *b = mmap(NULL, (size_t)PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (a == MAP_FAILED || b == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  memset(b, 1, (size_t)PAGES * 4096);
  double zero = 1e18, copy = 1e18;
  for (int pass = 0; pass < PASSES; pass++) {
    double t0 = now();
    for (size_t i = 0; i < PAGES; i++) memset(a + i * 4096, 0, 4096);
    double t1 = now();
    for (size_t i = 0; i < PAGES; i++) memcpy(a + i * 4096, b + i * 4096, 4096);
    double t2 = now();
    if ((t1 - t0) / PAGES < zero) zero = (t1 - t0) / PAGES;
    if ((t2 - t1) / PAGES < copy) copy = (t2 - t1) / PAGES;
    /* Keep the stores: make the compiler believe the buffer is read. */
    __asm__ volatile("" : : "r"(a) : "memory");
  }
  printf("zero_page_ns %.1f\ncopy_page_ns %.1f\n", zero, copy);
  return 0;
}
