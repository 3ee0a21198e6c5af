/** The names a playground program sees, with what each is (for the page's help and for errors). */
export const PROGRAM_API: Readonly<Record<string, string>> = {
  spawn: 'spawn(name, function* (u) {...}, cpu = 0): start a process; u is its UserContext',
  thread:
    "yield* thread(u, cpu, function* (t) {...}): start a thread of u's process; returns join(), a generator",
  show: "show(u, label): snapshot u's process: /proc/self/maps, page tables, fault counters",
  print: 'print(...values): a line of output',
  check: 'check(ok, message): stop the run with a failure report unless ok',
  system: 'the booted System (system.vmstat, system.assertInvariants(), ...)',
  UserSignal: 'the exception a caught SIGSEGV/SIGBUS throws (after u.catchSignal("SIGSEGV"))',
  PAGE: '4096',
};
