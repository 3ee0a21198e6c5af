/*
 * spf calibrate: what the cost model's `lineTransfer` stands for on this host. Two threads pinned to CPUs 0
 * and 1 ping-pong one cache line: each waits until the line holds its turn, then stores the other's. One
 * round trip moves the line twice between the cores, so a transfer is half a round trip. Wall time (both
 * threads must run at once), in many short passes of 100 round trips, and prints the best: a pass in which
 * another job preempted either thread is inflated by a whole time slice, so on a shared host the best is the
 * only pass that shows the transfer.
 * Output: "line_transfer_ns <ns>", or "line_transfer_ns -1" when fewer than two CPUs can be used.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 100
#define PASSES 1000

static _Alignas(64) volatile int turn;
static _Alignas(64) volatile int go;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *pong(void *arg) {
  (void)arg;
  if (pin(1) != 0) return (void *)1;
  for (int pass = 0; pass < PASSES; pass++) {
    while (go != pass + 1) __builtin_ia32_pause();
    for (int i = 0; i < ROUNDS; i++) {
      while (turn != 1) {
      }
      turn = 0;
    }
  }
  return NULL;
}

int main(void) {
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || pin(0) != 0) {
    printf("line_transfer_ns -1\n");
    return 0;
  }
  pthread_t t;
  if (pthread_create(&t, NULL, pong, NULL) != 0) {
    printf("line_transfer_ns -1\n");
    return 0;
  }
  double best = 1e18;
  for (int pass = 0; pass < PASSES; pass++) {
    turn = 0;
    go = pass + 1;
    double t0 = now();
    for (int i = 0; i < ROUNDS; i++) {
      turn = 1;
      while (turn != 0) {
      }
    }
    double ns = (now() - t0) / ROUNDS / 2;
    if (ns < best) best = ns;
  }
  void *r;
  pthread_join(t, &r);
  if (r != NULL) best = -1;
  printf("line_transfer_ns %.1f\n", best);
  return 0;
}
