/*
 * spf replay harness: runs an spf replay script (see ../README.md, "Replay format") on the host Linux
 * kernel with real system calls and prints the same observation lines that `spf replay` prints for the
 * simulator, so the two outputs can be compared line by line.
 *
 *   cc -O1 -o /tmp/h harness.c && /tmp/h < script       run a script
 *   /tmp/h --probe                                       describe the host (zero page, PFN visibility,
 *                                                        RAM and swap in pages, overcommit settings)
 *
 * The arena is 16 TiB of address space from ARENA_BASE. The harness itself never allocates after start-up
 * (static buffers only, no stdio on stdout, no malloc), so nothing of its own appears in the arena. It
 * pre-faults and locks its own memory so that the getrusage() deltas around a touch count only the fault
 * of the touched page.
 *
 * Exit status: 0 after running the script, 2 on a malformed script line (message on stderr, naming the
 * line), 3 when the host cannot run the harness (message on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef PR_SET_THP_DISABLE
#define PR_SET_THP_DISABLE 41
#endif
#ifndef SEGV_PKUERR
#define SEGV_PKUERR 4
#endif

#define PAGE 4096UL
#define ARENA_BASE 0x100000000000UL
#define ARENA_PAGES (1UL << 32)
#define ARENA_END (ARENA_BASE + ARENA_PAGES * PAGE)

#define PM_PRESENT (1ULL << 63)
#define PM_SWAP (1ULL << 62)
#define PM_FILE (1ULL << 61)
#define PM_PFN_MASK ((1ULL << 55) - 1)

#define MAX_FILES 64
#define MAX_FILE_PAGES 65536
#define TMPFS_MAGIC_ 0x01021994
#define RAMFS_MAGIC_ 0x858458f6

/* ---- static state: nothing below is allocated at run time ---- */

static char in_buf[8 << 20];
static char out_buf[1 << 16];
static size_t out_len;
static char maps_buf[1 << 20];
static unsigned char alt_stack[64 * 1024] __attribute__((aligned(4096)));
static uint64_t pm_buf[4096];
static unsigned char page_buf[PAGE];
static unsigned char mincore_buf[MAX_FILE_PAGES];
static unsigned char mapped_buf[MAX_FILE_PAGES];

/* Files of the script: fd and inode per id (-1: no such file), in a fresh directory made on first use. */
static int file_fd[MAX_FILES];
static uint64_t file_ino[MAX_FILES];
static dev_t file_dev;
static char dir_path[2048];
static int dir_made;
static char path_buf[2100];

static int pagemap_fd = -1;
static int zero_pfn_known;
static uint64_t zero_pfn;
static int pfn_visible;

static sigjmp_buf touch_jmp;
static volatile sig_atomic_t touch_armed;
static volatile int fault_signo;
static volatile int fault_code;
static volatile uintptr_t fault_addr;

/* ---- output without stdio (no allocation, no faults on fresh heap) ---- */

static void out_flush(void) {
  size_t done = 0;
  while (done < out_len) {
    ssize_t n = write(1, out_buf + done, out_len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      _exit(3);
    }
    done += (size_t)n;
  }
  out_len = 0;
}

static void out_str(const char *s) {
  size_t n = strlen(s);
  if (out_len + n > sizeof out_buf) out_flush();
  memcpy(out_buf + out_len, s, n);
  out_len += n;
}

static void out_u64(uint64_t v) {
  char tmp[24];
  int i = sizeof tmp;
  tmp[--i] = 0;
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  out_str(tmp + i);
}

static void out_char(char c) {
  char s[2] = {c, 0};
  out_str(s);
}

static void remove_files(void);

static void die(int status, const char *what, unsigned long line) {
  out_flush();
  remove_files();
  if (line)
    fprintf(stderr, "spf-harness: line %lu: %s\n", line, what);
  else
    fprintf(stderr, "spf-harness: %s\n", what);
  _exit(status);
}

/* ---- errno names ---- */

static const char *errno_name(int e) {
  switch (e) {
  case EINVAL: return "EINVAL";
  case ENOMEM: return "ENOMEM";
  case EEXIST: return "EEXIST";
  case EACCES: return "EACCES";
  case EPERM: return "EPERM";
  case EAGAIN: return "EAGAIN";
  case EFAULT: return "EFAULT";
  case EBADF: return "EBADF";
  case ENODEV: return "ENODEV";
  case EOVERFLOW: return "EOVERFLOW";
  case ENFILE: return "ENFILE";
  case EMFILE: return "EMFILE";
  case EBUSY: return "EBUSY";
  case ETXTBSY: return "ETXTBSY";
  case ENOENT: return "ENOENT";
  case EFBIG: return "EFBIG";
  case ENOSPC: return "ENOSPC";
  case EIO: return "EIO";
  case ESPIPE: return "ESPIPE";
  case EISDIR: return "EISDIR";
  default: return 0;
  }
}

static void out_errno(int e) {
  const char *name = errno_name(e);
  if (name) {
    out_str(name);
  } else {
    out_str("E");
    out_u64((uint64_t)e);
  }
}

/* ---- start-up: keep the harness's own faults out of the measurements ---- */

static void __attribute__((noinline)) prefault_stack(void) {
  volatile char pad[256 * 1024];
  for (size_t i = 0; i < sizeof pad; i += 512) pad[i] = 0;
}

static void prefault_static(void) {
  /* .bss pages are untouched until written; write every page of every buffer once. */
  for (size_t i = 0; i < sizeof in_buf; i += PAGE) in_buf[i] = 0;
  for (size_t i = 0; i < sizeof out_buf; i += PAGE) out_buf[i] = 0;
  for (size_t i = 0; i < sizeof maps_buf; i += PAGE) maps_buf[i] = 0;
  for (size_t i = 0; i < sizeof alt_stack; i += PAGE) alt_stack[i] = 0;
  for (size_t i = 0; i < sizeof pm_buf / sizeof pm_buf[0]; i += PAGE / sizeof pm_buf[0]) pm_buf[i] = 0;
  for (size_t i = 0; i < sizeof page_buf; i += PAGE) page_buf[i] = 0;
  for (size_t i = 0; i < sizeof mincore_buf; i += PAGE) mincore_buf[i] = 0;
  for (size_t i = 0; i < sizeof mapped_buf; i += PAGE) mapped_buf[i] = 0;
}

static void on_fault(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  if (!touch_armed) {
    /* A fault outside a touch is a bug in the harness: die loudly rather than report nonsense. */
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  touch_armed = 0;
  fault_signo = sig;
  fault_code = si->si_code;
  fault_addr = (uintptr_t)si->si_addr;
  siglongjmp(touch_jmp, 1);
}

static void install_handlers(void) {
  stack_t ss;
  ss.ss_sp = alt_stack;
  ss.ss_size = sizeof alt_stack;
  ss.ss_flags = 0;
  if (sigaltstack(&ss, 0) != 0) die(3, "sigaltstack failed", 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, 0) != 0 || sigaction(SIGBUS, &sa, 0) != 0) die(3, "sigaction failed", 0);
}

/* ---- /proc/self/maps and /proc/self/pagemap ---- */

static size_t read_maps(void) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(3, "cannot open /proc/self/maps (is /proc mounted?)", 0);
  size_t len = 0;
  for (;;) {
    if (len + 1 >= sizeof maps_buf) die(3, "/proc/self/maps is larger than the harness's 1 MiB buffer", 0);
    ssize_t n = read(fd, maps_buf + len, sizeof maps_buf - 1 - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      die(3, "reading /proc/self/maps failed", 0);
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  close(fd);
  maps_buf[len] = 0;
  return len;
}

static uint64_t parse_hex(const char **p) {
  uint64_t v = 0;
  for (;;) {
    char c = **p;
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else break;
    v = v * 16 + (uint64_t)d;
    (*p)++;
  }
  return v;
}

/* One /proc/self/maps line: start, end, perms (4 chars), file offset in bytes, device and inode. */
struct map_line {
  uint64_t start, end, offset, ino;
  unsigned dev_major, dev_minor;
  char perms[5];
};

/* Calls fn for every /proc/self/maps line. */
typedef void (*maps_fn)(const struct map_line *m);

static void for_each_map(maps_fn fn) {
  size_t len = read_maps();
  const char *p = maps_buf;
  const char *end = maps_buf + len;
  while (p < end) {
    struct map_line m;
    m.start = parse_hex(&p);
    p++; /* '-' */
    m.end = parse_hex(&p);
    p++; /* ' ' */
    memcpy(m.perms, p, 4);
    m.perms[4] = 0;
    p += 5;
    m.offset = parse_hex(&p);
    p++; /* ' ' */
    m.dev_major = (unsigned)parse_hex(&p);
    p++; /* ':' */
    m.dev_minor = (unsigned)parse_hex(&p);
    p++; /* ' ' */
    m.ino = 0;
    while (p < end && *p >= '0' && *p <= '9') m.ino = m.ino * 10 + (uint64_t)(*p++ - '0');
    fn(&m);
    while (p < end && *p != '\n') p++;
    p++;
  }
}

/* The script's file id of the file a maps line maps, or -1 (anonymous memory, or not one of ours). */
static int map_file_id(const struct map_line *m) {
  if (!dir_made || m->ino == 0 || m->dev_major != major(file_dev) || m->dev_minor != minor(file_dev)) return -1;
  for (int id = 0; id < MAX_FILES; id++)
    if (file_fd[id] >= 0 && file_ino[id] == m->ino) return id;
  return -1;
}

static void print_arena_map(const struct map_line *m) {
  if (m->end <= ARENA_BASE || m->start >= ARENA_END) return;
  out_u64((m->start - ARENA_BASE) / PAGE);
  out_char('-');
  out_u64((m->end - ARENA_BASE) / PAGE);
  out_char(' ');
  out_str(m->perms);
  out_char(' ');
  out_u64(m->offset / PAGE);
  int id = map_file_id(m);
  if (id < 0) {
    out_str(" -\n");
  } else {
    out_str(" f");
    out_u64((uint64_t)id);
    out_char('\n');
  }
}

static int arena_busy;
static void check_arena_empty(const struct map_line *m) {
  if (m->end > ARENA_BASE && m->start < ARENA_END) arena_busy = 1;
}

static uint64_t pagemap_entry(uintptr_t addr) {
  uint64_t v = 0;
  if (pread(pagemap_fd, &v, sizeof v, (off_t)(addr / PAGE * sizeof v)) != (ssize_t)sizeof v)
    die(3, "reading /proc/self/pagemap failed", 0);
  return v;
}

/* ---- zero-page probe ---- */

/*
 * Reads two fresh private anonymous pages (outside the arena) and compares their PFNs. With a shared zero
 * page both read faults map the same frame; without one (as on kernels built without it, or with
 * mm_forbids_zeropage) each read allocates its own page.
 */
static void probe_zero_page(void) {
  unsigned char *p = mmap(0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die(3, "probe mmap failed", 0);
  volatile unsigned char sink = p[0];
  sink = p[PAGE];
  (void)sink;
  uint64_t a = pagemap_entry((uintptr_t)p);
  uint64_t b = pagemap_entry((uintptr_t)p + PAGE);
  munmap(p, 2 * PAGE);
  uint64_t pa = a & PM_PFN_MASK;
  uint64_t pb = b & PM_PFN_MASK;
  pfn_visible = (a & PM_PRESENT) && pa != 0;
  if (pfn_visible && pa == pb) {
    zero_pfn_known = 1;
    zero_pfn = pa;
  }
}

/* ---- the ops ---- */

static int parse_prot(const char *t, int *prot) {
  if (strcmp(t, "-") == 0) {
    *prot = PROT_NONE;
    return 1;
  }
  int v = 0;
  if (!*t) return 0;
  for (; *t; t++) {
    int bit = *t == 'r' ? PROT_READ : *t == 'w' ? PROT_WRITE : *t == 'x' ? PROT_EXEC : 0;
    if (!bit || (v & bit)) return 0;
    v |= bit;
  }
  *prot = v;
  return 1;
}

static int parse_num(const char *t, uint64_t *v) {
  if (!*t) return 0;
  uint64_t n = 0;
  for (; *t; t++) {
    if (*t < '0' || *t > '9') return 0;
    n = n * 10 + (uint64_t)(*t - '0');
    if (n > ARENA_PAGES) return 0;
  }
  *v = n;
  return 1;
}

/* Offsets and lengths must keep the range inside the arena (the TypeScript parser checks the same). */
static int in_arena(uint64_t off, uint64_t npages) { return off + npages <= ARENA_PAGES; }

#define MAX_PAGEMAP_PAGES 65536

static void op_result(const char *op, int rc) {
  out_str(op);
  if (rc == 0) {
    out_str(" ok\n");
  } else {
    out_char(' ');
    out_errno(errno);
    out_char('\n');
  }
}

/* file < 0: anonymous memory; else the script's file id, mapped from page pgoff. */
static void do_mmap(uint64_t off, uint64_t npages, int prot, int shared, int fixed, int file, uint64_t pgoff) {
  uintptr_t want = ARENA_BASE + off * PAGE;
  int flags = (shared ? MAP_SHARED : MAP_PRIVATE) | (file < 0 ? MAP_ANONYMOUS : 0) |
              (fixed ? MAP_FIXED : MAP_FIXED_NOREPLACE);
  /* An id without a file maps fd -1 without MAP_ANONYMOUS: the kernel's EBADF. */
  int fd = file < 0 ? -1 : file_fd[file];
  void *r = mmap((void *)want, npages * PAGE, prot, flags, fd, file < 0 ? 0 : (off_t)(pgoff * PAGE));
  if (r == MAP_FAILED) {
    op_result("mmap", -1);
  } else if ((uintptr_t)r != want) {
    /* A kernel older than 4.17 treats MAP_FIXED_NOREPLACE as a hint; undo and say so. */
    munmap(r, npages * PAGE);
    die(3, "mmap ignored MAP_FIXED_NOREPLACE (kernel older than 4.17?)", 0);
  } else {
    out_str("mmap ok\n");
  }
}

/*
 * Waits (up to 2 s) until the block device under the file directory has no request in flight
 * (/sys/dev/block/<major>:<minor>/inflight reads "0 0"). A fault or read can leave readahead I/O running
 * after it returns (the rest of a synchronous window, or an asynchronous one); a later op touching those
 * pages would then wait for the I/O and count a major fault, or not, depending on timing. Waiting after each
 * op makes the outputs depend on what the kernel decided, not on how fast the disk was. Does nothing before
 * the script has made a file.
 */
static void settle_io(void) {
  if (!dir_made) return;
  char path[96];
  char buf[64];
  snprintf(path, sizeof path, "/sys/dev/block/%u:%u/inflight", major(file_dev), minor(file_dev));
  for (int i = 0; i < 2000; i++) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return;
    buf[n] = 0;
    int busy = 0;
    for (ssize_t k = 0; k < n; k++) busy |= buf[k] >= '1' && buf[k] <= '9';
    if (!busy) return;
    usleep(1000);
  }
}

static void __attribute__((noinline)) do_touch(uint64_t page, int write) {
  volatile unsigned char *p = (volatile unsigned char *)(ARENA_BASE + page * PAGE);
  static struct rusage before, after;
  static volatile unsigned char val;
  if (sigsetjmp(touch_jmp, 1) == 0) {
    touch_armed = 1;
    getrusage(RUSAGE_SELF, &before);
    if (write)
      *p = 0x5a;
    else
      val = *p;
    getrusage(RUSAGE_SELF, &after);
    touch_armed = 0;
    out_str("touch ok min=");
    out_u64((uint64_t)(after.ru_minflt - before.ru_minflt));
    out_str(" maj=");
    out_u64((uint64_t)(after.ru_majflt - before.ru_majflt));
    if (!write) {
      out_str(" val=");
      out_u64(val);
    }
    out_char('\n');
    settle_io();
    return;
  }
  if (fault_addr != (uintptr_t)p) die(3, "a fault hit an address other than the touched page", 0);
  if (fault_signo == SIGBUS) {
    out_str("touch SIGBUS\n");
    return;
  }
  out_str("touch SIGSEGV ");
  if (fault_code == SEGV_MAPERR) out_str("MAPERR");
  else if (fault_code == SEGV_ACCERR) out_str("ACCERR");
  else if (fault_code == SEGV_PKUERR) out_str("PKUERR");
  else {
    out_str("CODE");
    out_u64((uint64_t)fault_code);
  }
  out_char('\n');
}

static void do_pagemap(uint64_t off, uint64_t npages) {
  out_str("pagemap ");
  uint64_t done = 0;
  while (done < npages) {
    uint64_t n = npages - done;
    if (n > sizeof pm_buf / sizeof pm_buf[0]) n = sizeof pm_buf / sizeof pm_buf[0];
    off_t pos = (off_t)((ARENA_BASE / PAGE + off + done) * sizeof(uint64_t));
    ssize_t got = pread(pagemap_fd, pm_buf, n * sizeof(uint64_t), pos);
    if (got != (ssize_t)(n * sizeof(uint64_t))) die(3, "reading /proc/self/pagemap failed", 0);
    for (uint64_t i = 0; i < n; i++) {
      uint64_t e = pm_buf[i];
      char c = '.';
      if (e & PM_PRESENT) {
        if (zero_pfn_known && (e & PM_PFN_MASK) == zero_pfn) c = 'Z';
        else if (e & PM_FILE) c = 'F';
        else c = 'A';
      }
      out_char(c);
    }
    done += n;
  }
  out_char('\n');
}

/* ---- files ---- */

static void remove_files(void) {
  if (!dir_made) return;
  for (int id = 0; id < MAX_FILES; id++) {
    if (file_fd[id] < 0) continue;
    snprintf(path_buf, sizeof path_buf, "%s/f%d", dir_path, id);
    unlink(path_buf);
  }
  rmdir(dir_path);
  dir_made = 0;
}

/*
 * The directory the files live in: $SPF_HARNESS_DIR, else /var/tmp. It must be on a disk-backed
 * filesystem: on tmpfs or ramfs there is no readahead, no major fault and no eviction to observe.
 */
static const char *file_base(void) {
  const char *base = getenv("SPF_HARNESS_DIR");
  return base && *base ? base : "/var/tmp";
}

/* Makes the fresh directory once. Returns 0, or why files cannot be made here. */
static const char *try_make_dir(void) {
  if (dir_made) return 0;
  const char *base = file_base();
  struct statfs fs;
  if (statfs(base, &fs) != 0) return "cannot statfs the file directory (set SPF_HARNESS_DIR to an existing directory)";
  if ((unsigned long)fs.f_type == TMPFS_MAGIC_ || (unsigned long)fs.f_type == RAMFS_MAGIC_)
    return "the file directory is on tmpfs/ramfs; set SPF_HARNESS_DIR to a directory on a disk-backed filesystem";
  if ((size_t)snprintf(dir_path, sizeof dir_path, "%s/spf-harness-XXXXXX", base) >= sizeof dir_path)
    return "SPF_HARNESS_DIR is too long";
  if (!mkdtemp(dir_path)) return "cannot create a fresh directory under SPF_HARNESS_DIR (or /var/tmp)";
  struct stat st;
  if (stat(dir_path, &st) != 0) return "cannot stat the fresh file directory";
  file_dev = st.st_dev;
  dir_made = 1;
  return 0;
}

static void make_dir(void) {
  const char *why = try_make_dir();
  if (why) die(3, why, 0);
}

/* Byte b of page p of file id: (p*13 + b*7 + id) & 0xff. */
static void fill_page(uint64_t id, uint64_t p) {
  for (uint64_t b = 0; b < PAGE; b++) page_buf[b] = (unsigned char)((p * 13 + b * 7 + id) & 0xff);
}

static void out_file_result(const char *op, uint64_t id, int err) {
  out_str(op);
  out_char(' ');
  out_u64(id);
  out_char(' ');
  if (err == 0) out_str("ok");
  else out_errno(err);
  out_char('\n');
}

/* file <id> <npages>: create, write every page, fsync. The pages stay in the page cache, clean. */
static void do_file(uint64_t id, uint64_t npages) {
  if (file_fd[id] >= 0) {
    out_file_result("file", id, EEXIST);
    return;
  }
  make_dir();
  snprintf(path_buf, sizeof path_buf, "%s/f%d", dir_path, (int)id);
  int fd = open(path_buf, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    out_file_result("file", id, errno);
    return;
  }
  for (uint64_t p = 0; p < npages; p++) {
    fill_page(id, p);
    size_t done = 0;
    while (done < PAGE) {
      ssize_t n = pwrite(fd, page_buf + done, PAGE - done, (off_t)(p * PAGE + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) die(3, "writing a file's contents failed (disk full?)", 0);
      done += (size_t)n;
    }
  }
  if (fsync(fd) != 0) die(3, "fsync of a new file failed", 0);
  struct stat st;
  if (fstat(fd, &st) != 0) die(3, "fstat of a new file failed", 0);
  file_fd[id] = fd;
  file_ino[id] = (uint64_t)st.st_ino;
  out_file_result("file", id, 0);
  settle_io();
}

/* Marks in mapped_buf the pages of file id that an arena mapping has present as file pages. */
static int marking_id;
static void mark_mapped(const struct map_line *m) {
  if (m->end <= ARENA_BASE || m->start >= ARENA_END || map_file_id(m) != marking_id) return;
  for (uint64_t a = m->start; a < m->end; a += PAGE) {
    uint64_t e = pagemap_entry((uintptr_t)a);
    uint64_t idx = m->offset / PAGE + (a - m->start) / PAGE;
    if ((e & PM_PRESENT) && (e & PM_FILE) && idx < MAX_FILE_PAGES) mapped_buf[idx] = 1;
  }
}

/*
 * Counts the pages of file id still in the page cache (mincore on a temporary mapping outside the arena)
 * that no arena mapping maps. posix_fadvise(DONTNEED) leaves mapped pages alone, as Linux's
 * invalidate_mapping_pages() does; any other page left behind would make the next fault minor where the
 * script expects a major one. Returns -1 when the file is too large to check.
 */
static long unmapped_cached_pages(int id) {
  struct stat st;
  if (fstat(file_fd[id], &st) != 0) die(3, "fstat failed", 0);
  uint64_t n = ((uint64_t)st.st_size + PAGE - 1) / PAGE;
  if (n == 0) return 0;
  if (n > MAX_FILE_PAGES) return -1;
  void *m = mmap(0, n * PAGE, PROT_NONE, MAP_SHARED, file_fd[id], 0);
  if (m == MAP_FAILED) die(3, "mapping a file to check its page cache failed", 0);
  if (mincore(m, n * PAGE, mincore_buf) != 0) die(3, "mincore failed", 0);
  munmap(m, n * PAGE);
  memset(mapped_buf, 0, n);
  marking_id = id;
  for_each_map(mark_mapped);
  long left = 0;
  for (uint64_t i = 0; i < n; i++) left += (mincore_buf[i] & 1) && !mapped_buf[i];
  return left;
}

/* evict <id>: fsync, then posix_fadvise(POSIX_FADV_DONTNEED) over the whole file. */
static void do_evict(uint64_t id) {
  int fd = file_fd[id];
  int err = fsync(fd) == 0 ? 0 : errno;
  if (err == 0) err = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  if (err == 0) {
    /* The kernel drains the other CPUs' LRU batches and retries by itself; a page under writeback or
     * just unlocked can still linger for a moment, so try a few more times before giving up. */
    long left = unmapped_cached_pages((int)id);
    for (int i = 0; i < 20 && left > 0; i++) {
      usleep(1000);
      posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      left = unmapped_cached_pages((int)id);
    }
    if (left > 0) die(3, "evict: posix_fadvise(DONTNEED) left unmapped pages in the page cache", 0);
  }
  out_file_result("evict", id, err);
  settle_io();
}

/* truncate <id> <npages>: ftruncate to npages pages. */
static void do_truncate(uint64_t id, uint64_t npages) {
  int err = ftruncate(file_fd[id], (off_t)(npages * PAGE)) == 0 ? 0 : errno;
  out_file_result("truncate", id, err);
  settle_io();
}

/* read <id> <page>: pread of the page's first byte. */
static void do_read(uint64_t id, uint64_t page) {
  unsigned char b;
  ssize_t n = pread(file_fd[id], &b, 1, (off_t)(page * PAGE));
  int err = errno;
  out_str("read ");
  out_u64(id);
  out_char(' ');
  out_u64(page);
  if (n < 0) {
    out_char(' ');
    out_errno(err);
  } else if (n == 0) {
    out_str(" eof");
  } else {
    out_str(" val=");
    out_u64(b);
  }
  out_char('\n');
  settle_io();
}

/* write <id> <page>: pwrite of 0x77 at the page's first byte. */
static void do_write(uint64_t id, uint64_t page) {
  unsigned char b = 0x77;
  ssize_t n = pwrite(file_fd[id], &b, 1, (off_t)(page * PAGE));
  int err = errno;
  out_str("write ");
  out_u64(id);
  out_char(' ');
  out_u64(page);
  out_char(' ');
  if (n < 0) out_errno(err);
  else out_str("ok");
  out_char('\n');
  settle_io();
}

static int parse_id(const char *t, uint64_t *id) { return parse_num(t, id) && *id < MAX_FILES; }

/* An mmap source: "anon" (file = -1) or "<id>:<pgoff>". */
static int parse_source(char *t, int *file, uint64_t *pgoff) {
  if (strcmp(t, "anon") == 0) {
    *file = -1;
    *pgoff = 0;
    return 1;
  }
  char *colon = strchr(t, ':');
  if (!colon) return 0;
  *colon = 0;
  uint64_t id;
  int ok = parse_id(t, &id) && parse_num(colon + 1, pgoff);
  *colon = ':';
  *file = (int)id;
  return ok;
}

/* ---- the script ---- */

#define MAX_TOKENS 8

static void run_line(char *line, unsigned long lineno) {
  char *hash = strchr(line, '#');
  if (hash) *hash = 0;
  char *tok[MAX_TOKENS + 1];
  int nt = 0;
  char *save = 0;
  for (char *t = strtok_r(line, " \t\r", &save); t; t = strtok_r(0, " \t\r", &save)) {
    if (nt == MAX_TOKENS) die(2, "too many fields", lineno);
    tok[nt++] = t;
  }
  if (nt == 0) return;
  uint64_t a, b;
  int prot;
  const char *op = tok[0];
  int file;
  uint64_t pgoff;
  if (strcmp(op, "mmap") == 0) {
    int fixed = nt == 7 && strcmp(tok[6], "fixed") == 0;
    if ((nt != 6 && !fixed) || !parse_num(tok[1], &a) || !parse_num(tok[2], &b) || !parse_prot(tok[3], &prot) ||
        (strcmp(tok[4], "private") != 0 && strcmp(tok[4], "shared") != 0) ||
        !parse_source(tok[5], &file, &pgoff) || !in_arena(a, b))
      die(2, "mmap expects <off> <npages> <prot> <share> anon|<id>:<pgoff> [fixed]", lineno);
    do_mmap(a, b, prot, strcmp(tok[4], "shared") == 0, fixed, file, pgoff);
  } else if (strcmp(op, "file") == 0) {
    if (nt != 3 || !parse_id(tok[1], &a) || !parse_num(tok[2], &b) || b > MAX_FILE_PAGES)
      die(2, "file expects <id> <npages> with id below 64 and npages at most 65536", lineno);
    do_file(a, b);
  } else if (strcmp(op, "evict") == 0) {
    if (nt != 2 || !parse_id(tok[1], &a)) die(2, "evict expects <id> below 64", lineno);
    do_evict(a);
  } else if (strcmp(op, "truncate") == 0) {
    if (nt != 3 || !parse_id(tok[1], &a) || !parse_num(tok[2], &b) || b > MAX_FILE_PAGES)
      die(2, "truncate expects <id> <npages> with id below 64 and npages at most 65536", lineno);
    do_truncate(a, b);
  } else if (strcmp(op, "read") == 0) {
    if (nt != 3 || !parse_id(tok[1], &a) || !parse_num(tok[2], &b) || b >= ARENA_PAGES)
      die(2, "read expects <id> <page> with id below 64", lineno);
    do_read(a, b);
  } else if (strcmp(op, "write") == 0) {
    if (nt != 3 || !parse_id(tok[1], &a) || !parse_num(tok[2], &b) || b > MAX_FILE_PAGES)
      die(2, "write expects <id> <page> with id below 64 and page at most 65536", lineno);
    do_write(a, b);
  } else if (strcmp(op, "munmap") == 0) {
    if (nt != 3 || !parse_num(tok[1], &a) || !parse_num(tok[2], &b) || !in_arena(a, b))
      die(2, "munmap expects <off> <npages>", lineno);
    op_result("munmap", munmap((void *)(ARENA_BASE + a * PAGE), b * PAGE));
  } else if (strcmp(op, "mprotect") == 0) {
    if (nt != 4 || !parse_num(tok[1], &a) || !parse_num(tok[2], &b) || !parse_prot(tok[3], &prot) ||
        !in_arena(a, b))
      die(2, "mprotect expects <off> <npages> <prot>", lineno);
    op_result("mprotect", mprotect((void *)(ARENA_BASE + a * PAGE), b * PAGE, prot));
  } else if (strcmp(op, "touch") == 0) {
    if (nt != 3 || !parse_num(tok[1], &a) || a >= ARENA_PAGES ||
        (strcmp(tok[2], "r") != 0 && strcmp(tok[2], "w") != 0))
      die(2, "touch expects <page> r|w", lineno);
    do_touch(a, tok[2][0] == 'w');
  } else if (strcmp(op, "maps") == 0) {
    if (nt != 1) die(2, "maps takes no arguments", lineno);
    out_str("maps\n");
    for_each_map(print_arena_map);
    out_str("end\n");
  } else if (strcmp(op, "pagemap") == 0) {
    if (nt != 3 || !parse_num(tok[1], &a) || !parse_num(tok[2], &b) || b == 0 || b > MAX_PAGEMAP_PAGES ||
        !in_arena(a, b))
      die(2, "pagemap expects <off> <npages> with 1 <= npages <= 65536", lineno);
    do_pagemap(a, b);
  } else {
    die(2, "unknown op (expected mmap, munmap, mprotect, touch, maps, pagemap, file, evict, truncate, read or write)",
        lineno);
  }
  if (out_len > sizeof out_buf / 2) out_flush();
}

static void setup(void) {
  for (int id = 0; id < MAX_FILES; id++) file_fd[id] = -1;
  prefault_stack();
  prefault_static();
  if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) die(3, "prctl(PR_SET_THP_DISABLE) failed", 0);
  pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap_fd < 0) die(3, "cannot open /proc/self/pagemap", 0);
  install_handlers();
  arena_busy = 0;
  for_each_map(check_arena_empty);
  if (arena_busy) die(3, "something is already mapped in the arena 0x100000000000..0x200000000000", 0);
  probe_zero_page();
  /* Populate and lock everything mapped so far (text, data, stack, libc) so that touches count only the
   * fault of the touched page. Failing (no privilege) is fine: the warm-up below covers the hot paths. */
  (void)mlockall(MCL_CURRENT);
  /* Warm up the touch and fault paths once on a scratch page outside the arena. */
  unsigned char *scratch = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (scratch == MAP_FAILED) die(3, "scratch mmap failed", 0);
  volatile unsigned char *sp = scratch;
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  sp[0] = 1;
  (void)sp[0];
  munmap(scratch, PAGE);
  /* Fault path: touch the first arena page while nothing is mapped there (we checked above). */
  size_t keep = out_len;
  do_touch(0, 0);
  do_touch(0, 1);
  out_len = keep;
}

/* A small non-negative number from a /proc/sys or /sys file; `fallback` if it cannot be read. */
static uint64_t read_number_or(const char *path, uint64_t fallback) {
  char buf[32];
  int fd = open(path, O_RDONLY);
  if (fd < 0) return fallback;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0 || buf[0] < '0' || buf[0] > '9') return fallback;
  uint64_t v = 0;
  for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) v = v * 10 + (uint64_t)(buf[i] - '0');
  return v;
}

static uint64_t read_sysctl(const char *path) { return read_number_or(path, 0); }

#define UNKNOWN ((uint64_t)-1)

/*
 * read_ahead_kb of the block device under the file directory: /sys/dev/block/<major>:<minor>/queue, or the
 * parent disk's queue for a partition. UNKNOWN when the filesystem has no block device of its own.
 */
static uint64_t probe_read_ahead_kb(void) {
  char path[128];
  snprintf(path, sizeof path, "/sys/dev/block/%u:%u/queue/read_ahead_kb", major(file_dev), minor(file_dev));
  uint64_t v = read_number_or(path, UNKNOWN);
  if (v != UNKNOWN) return v;
  snprintf(path, sizeof path, "/sys/dev/block/%u:%u/../queue/read_ahead_kb", major(file_dev), minor(file_dev));
  return read_number_or(path, UNKNOWN);
}

/*
 * Pages one read fault maps on a cached file (fault_around_bytes / 4096, which only debugfs shows): create a
 * 512-page file (cached, as `file` leaves it), map it at the 2 MiB-aligned arena base, read page 0 and count
 * the file pages now present. Uses file id 0; only for --probe, before any script.
 */
static uint64_t probe_fault_around_pages(void) {
  size_t keep = out_len;
  do_file(0, 512);
  out_len = keep;
  if (file_fd[0] < 0) die(3, "the fault-around probe could not create its file", 0);
  void *m = mmap((void *)ARENA_BASE, 512 * PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, file_fd[0], 0);
  if (m != (void *)ARENA_BASE) die(3, "the fault-around probe could not map its file", 0);
  volatile unsigned char sink = *(volatile unsigned char *)m;
  (void)sink;
  uint64_t n = 0;
  for (uint64_t i = 0; i < 512; i++) n += (pagemap_entry(ARENA_BASE + i * PAGE) & PM_PRESENT) != 0;
  munmap(m, 512 * PAGE);
  return n;
}

int main(int argc, char **argv) {
  int probe = argc == 2 && strcmp(argv[1], "--probe") == 0;
  if (argc > 1 && !probe) {
    fprintf(stderr, "usage: %s < script   |   %s --probe\n", argv[0], argv[0]);
    return 2;
  }
  setup();
  if (probe) {
    out_str("linux 1\n");
    out_str("pfn-visible ");
    out_u64((uint64_t)pfn_visible);
    out_str("\nzero-page ");
    out_str(!pfn_visible ? "unknown" : zero_pfn_known ? "yes" : "no");
    /* totalram_pages() and total_swap_pages, which __vm_enough_memory() compares requests with. */
    struct sysinfo si;
    if (sysinfo(&si) != 0) die(3, "sysinfo failed", 0);
    out_str("\nram-pages ");
    out_u64((uint64_t)si.totalram * si.mem_unit / PAGE);
    out_str("\nswap-pages ");
    out_u64((uint64_t)si.totalswap * si.mem_unit / PAGE);
    out_str("\novercommit-memory ");
    out_u64(read_sysctl("/proc/sys/vm/overcommit_memory"));
    out_str("\novercommit-ratio ");
    out_u64(read_sysctl("/proc/sys/vm/overcommit_ratio"));
    /* Files: where the harness puts them, that device's readahead window, and fault-around. */
    const char *why = try_make_dir();
    if (why) {
      /* Anonymous memory can still be compared; say why files cannot. */
      out_str("\nfiles-unusable ");
      out_str(why);
    } else {
      out_str("\nfile-dir ");
      out_str(file_base());
      out_str("\nread-ahead-kb ");
      uint64_t ra = probe_read_ahead_kb();
      if (ra == UNKNOWN) out_str("unknown");
      else out_u64(ra);
      out_str("\nfault-around-pages ");
      out_u64(probe_fault_around_pages());
      remove_files();
    }
    out_str("\n");
    out_flush();
    return 0;
  }
  size_t len = 0;
  for (;;) {
    if (len + 1 >= sizeof in_buf) die(3, "script larger than 8 MiB", 0);
    ssize_t n = read(0, in_buf + len, sizeof in_buf - 1 - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      die(3, "reading stdin failed", 0);
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  in_buf[len] = 0;
  unsigned long lineno = 0;
  char *p = in_buf;
  while (*p) {
    char *nl = strchr(p, '\n');
    if (nl) *nl = 0;
    lineno++;
    run_line(p, lineno);
    if (!nl) break;
    p = nl + 1;
  }
  out_flush();
  remove_files();
  return 0;
}
