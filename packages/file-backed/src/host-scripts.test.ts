import { describe, expect, it } from 'vitest';
import { miniReplay } from './test-support/mini-replay.js';

/**
 * Scripts of the kernel conformance corpus (packages/kernel/conformance/host-file-outputs/, recorded by
 * the C harness on the reference host: Linux 6.18, ext4, read_ahead_kb 8192, fault-around 16 pages), with
 * the outputs the host printed, run here on @spf/file-backed alone. `maps` lines are left out (that is
 * @spf/kernel's printing).
 */
function check(script: string, hostOut: string): void {
  const want = hostOut.trim().split('\n');
  expect(miniReplay(script)).toEqual(want);
}

describe('host outputs of the file scripts (Linux 6.18)', () => {
  // One line differs from the host, on purpose: touching the PG_readahead page (2512) starts async
  // readahead after dropping the lock, so the fault returns VM_FAULT_RETRY without VM_FAULT_MAJOR. Under
  // mmap_lock (fault-classic's do_user_addr_fault) the retry always carries FAULT_FLAG_TRIED and counts as
  // major, as Linux counts any retry taken under mmap_lock; the host (6.18) first tries under the per-VMA lock, which sets
  // FAULT_FLAG_TRIED only after VM_FAULT_MAJOR, so it counts minor. @spf/fault-spec's
  // `perVmaLock({ fileVmas: true })` (Linux 6.7's file VMAs under the VMA lock) prints the host's line
  // (`miniReplay(script, 8192, handler)` with that handler; file-backed cannot depend on fault-spec, so the
  // check belongs to @spf/kernel's conformance run).
  it('readahead-async: PG_readahead starts the next window; a miss at its end reads around the fault', () => {
    check(
      `file 0 8192
evict 0
mmap 0 8192 r private 0:0
touch 2000 r
touch 2511 r
touch 3100 r
touch 5071 r
touch 5072 r
munmap 0 8192
evict 0
mmap 0 8192 r private 0:0
touch 2000 r
touch 2512 r
touch 3100 r
touch 5071 r
touch 5072 r
touch 4560 r
touch 6000 r
touch 7119 r
touch 7120 r`,
      `file 0 ok
evict 0 ok
mmap ok
touch ok min=0 maj=1 val=144
touch ok min=1 maj=0 val=131
touch ok min=0 maj=1 val=108
touch ok min=0 maj=1 val=131
touch ok min=1 maj=0 val=144
munmap ok
evict 0 ok
mmap ok
touch ok min=0 maj=1 val=144
touch ok min=0 maj=1 val=144
touch ok min=1 maj=0 val=108
touch ok min=1 maj=0 val=131
touch ok min=0 maj=1 val=144
touch ok min=1 maj=0 val=144
touch ok min=1 maj=0 val=176
touch ok min=0 maj=1 val=131
touch ok min=1 maj=0 val=144`,
    );
  });

  it('readahead-large-folio: async windows in order-2, 4, 6 folios; PG_readahead marks a whole folio; fault-around maps whole folios', () => {
    // The host's output, but for the three faults on PG_readahead folios (2512, 3026, 5073): major under
    // mmap_lock, as for readahead-async above (the host counts them minor under the per-VMA lock).
    check(
      `file 0 8192
evict 0
mmap 0 8192 r private 0:0
touch 2000 r
touch 2512 r
touch 3026 r
pagemap 3024 16
touch 5100 r
pagemap 5088 32
touch 5073 r
pagemap 5072 16
touch 8000 r
touch 8191 r
touch 7200 r
pagemap 7152 96`,
      `file 0 ok
evict 0 ok
mmap ok
touch ok min=0 maj=1 val=144
touch ok min=0 maj=1 val=144
touch ok min=0 maj=1 val=170
pagemap FFFFFFFFFFFFFFFF
touch ok min=1 maj=0 val=252
pagemap FFFFFFFFFFFFFFFF................
touch ok min=0 maj=1 val=157
pagemap FFFFFFFFFFFFFFFF
touch ok min=1 maj=0 val=64
touch ok min=1 maj=0 val=243
touch ok min=1 maj=0 val=160
pagemap ................FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF................`,
    );
  });

  it('readahead-large-folio-eof: finish_fault() maps the last folio whole; fault-around installs no table for it', () => {
    // The host's output, but for the three faults on PG_readahead folios (2512, 3026, 5073): major under
    // mmap_lock, as for readahead-async above.
    check(
      `file 0 8192
evict 0
mmap 0 8192 r private 0:0
touch 2000 r
touch 2512 r
touch 3026 r
touch 5073 r
touch 8130 r
pagemap 8112 80`,
      `file 0 ok
evict 0 ok
mmap ok
touch ok min=0 maj=1 val=144
touch ok min=0 maj=1 val=144
touch ok min=0 maj=1 val=170
touch ok min=0 maj=1 val=157
touch ok min=1 maj=0 val=218
pagemap ................FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF`,
    );
  });

  it('readahead-sync: read-around of ra_pages centred on the fault, clipped at 0; evict keeps mapped pages', () => {
    check(
      `file 0 4096
evict 0
mmap 0 4096 r private 0:0
touch 2000 r
touch 976 r
touch 3023 r
touch 975 r
munmap 0 4096
evict 0
mmap 0 4096 r private 0:0
touch 2000 r
touch 3024 r
evict 0
touch 2000 r
touch 2020 r
touch 2100 r
munmap 0 4096
evict 0
mmap 0 4096 r shared 0:0
touch 10 r
touch 1023 r
touch 1500 r
touch 2047 r
touch 2048 r`,
      `file 0 ok
evict 0 ok
mmap ok
touch ok min=0 maj=1 val=144
touch ok min=1 maj=0 val=144
touch ok min=1 maj=0 val=131
touch ok min=0 maj=1 val=131
munmap ok
evict 0 ok
mmap ok
touch ok min=0 maj=1 val=144
touch ok min=0 maj=1 val=144
evict 0 ok
touch ok min=0 maj=0 val=144
touch ok min=0 maj=1 val=148
touch ok min=1 maj=0 val=164
munmap ok
evict 0 ok
mmap ok
touch ok min=0 maj=1 val=130
touch ok min=1 maj=0 val=243
touch ok min=1 maj=0 val=44
touch ok min=1 maj=0 val=243
touch ok min=0 maj=1 val=0`,
    );
  });

  it('readahead-small-file: a small file is read whole; pread does the read path readahead', () => {
    check(
      `file 1 40
evict 1
mmap 0 40 r private 1:0
touch 20 r
touch 0 r
touch 39 r
pagemap 0 16
pagemap 32 8
file 2 4096
evict 2
read 2 0
mmap 100 4096 r private 2:0
touch 100 r
touch 103 r
touch 104 r
touch 131 r
touch 132 r
touch 200 r
read 2 1000
touch 1100 r
touch 1200 r`,
      `file 1 ok
evict 1 ok
mmap ok
touch ok min=0 maj=1 val=5
touch ok min=1 maj=0 val=1
touch ok min=1 maj=0 val=252
pagemap FFFFFFFFFFFFFFFF
pagemap FFFFFFFF
file 2 ok
evict 2 ok
read 2 0 val=2
mmap ok
touch ok min=1 maj=0 val=2
touch ok min=0 maj=0 val=41
touch ok min=0 maj=1 val=54
touch ok min=1 maj=0 val=149
touch ok min=0 maj=0 val=162
touch ok min=1 maj=0 val=22
read 2 1000 val=202
touch ok min=1 maj=0 val=202
touch ok min=1 maj=0 val=222`,
    );
  });

  it('fault-around: the 16-page block of the virtual address, clipped to the VMA and EOF; writes map one page', () => {
    check(
      `file 0 64
mmap 0 64 r private 0:0
touch 20 r
pagemap 0 64
touch 31 r
touch 32 r
pagemap 0 64
mmap 100 40 r shared 0:5
touch 110 r
pagemap 96 48
mmap 200 3 r private 0:30
touch 201 r
pagemap 196 12
mmap 300 20 r private 0:56
touch 301 r
pagemap 296 28
touch 308 r
touch 307 r
mmap 400 16 rw shared 0:0
touch 405 w
pagemap 400 16
mmap 420 16 rw private 0:0
touch 425 w
pagemap 420 16
touch 426 r
pagemap 420 16`,
      `file 0 ok
mmap ok
touch ok min=1 maj=0 val=4
pagemap ................FFFFFFFFFFFFFFFF................................
touch ok min=0 maj=0 val=147
touch ok min=1 maj=0 val=160
pagemap ................FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF................
mmap ok
touch ok min=1 maj=0 val=195
pagemap ....FFFFFFFFFFFFFFFF............................
mmap ok
touch ok min=1 maj=0 val=147
pagemap ....FFF.....
mmap ok
touch ok min=1 maj=0 val=229
pagemap ....FFFFFFFF................
touch SIGBUS
touch ok min=0 maj=0 val=51
mmap ok
touch ok min=1 maj=0
pagemap .....F..........
mmap ok
touch ok min=1 maj=0
pagemap .....A..........
touch ok min=1 maj=0 val=78
pagemap FFFFFAFFFFFFFFFF`,
    );
  });

  it('fault-around-eof: with no PTE table yet, a window whose first cached page is the last one maps nothing', () => {
    // Linux 6.18's filemap_map_pages() installs the PTE table (filemap_map_pmd()) only when the first folio
    // found ends before the file's last page; the same faults beside an existing table map that page.
    check(
      `file 1 4
file 2 6
file 3 6
mmap 7 8 r private 1:3
touch 12 r
pagemap 0 16
touch 7 r
pagemap 0 16
mmap 512 1 rw private anon
touch 512 w
mmap 519 8 r private 1:3
touch 524 r
pagemap 512 16
mmap 1024 16 r private 2:4
touch 1030 r
pagemap 1024 16
mmap 1536 16 r private 3:3
evict 3
read 3 5
touch 1541 r
pagemap 1536 16
mmap 2048 1 rw private anon
touch 2048 w
mmap 2051 8 r private 3:3
touch 2056 r
pagemap 2048 16`,
      `file 1 ok
file 2 ok
file 3 ok
mmap ok
touch SIGBUS
pagemap ................
touch ok min=1 maj=0 val=40
pagemap .......F........
mmap ok
touch ok min=1 maj=0
mmap ok
touch SIGBUS
pagemap A......F........
mmap ok
touch SIGBUS
pagemap FF..............
mmap ok
evict 3 ok
read 3 5 val=68
touch SIGBUS
pagemap ................
mmap ok
touch ok min=1 maj=0
mmap ok
touch SIGBUS
pagemap A....F..........`,
    );
  });

  it('shared-write: page_mkwrite on the first write of a read-mapped page; evict keeps mapped dirty pages', () => {
    check(
      `file 4 8
mmap 0 8 rw shared 4:0
touch 0 w
read 4 0
touch 1 r
touch 1 w
read 4 1
touch 1 w
write 4 2
touch 2 r
pagemap 0 8
evict 4
touch 0 r
touch 5 r
munmap 0 8
evict 4
read 4 0
read 4 1
mmap 0 8 r shared 4:0
touch 0 r
mprotect 0 8 rw
touch 3 w`,
      `file 4 ok
mmap ok
touch ok min=1 maj=0
read 4 0 val=90
touch ok min=1 maj=0 val=17
touch ok min=1 maj=0
read 4 1 val=90
touch ok min=0 maj=0
write 4 2 ok
touch ok min=0 maj=0 val=119
pagemap FFFFFFFF
evict 4 ok
touch ok min=0 maj=0 val=90
touch ok min=0 maj=0 val=69
munmap ok
evict 4 ok
read 4 0 val=90
read 4 1 val=90
mmap ok
touch ok min=1 maj=0 val=90
mprotect ok
touch ok min=1 maj=0`,
    );
  });

  it('cow-private and truncate: private copies, unmap_mapping_range including COW copies, holes read 0', () => {
    check(
      `file 3 8
mmap 0 8 rw private 3:0
touch 0 w
touch 0 r
read 3 0
touch 1 r
touch 1 w
touch 1 r
read 3 1
pagemap 0 8
write 3 2
write 3 0
touch 2 r
touch 0 r
evict 3
touch 6 w
touch 7 r
pagemap 0 8
file 7 16
mmap 96 16 rw shared 7:0
mmap 116 16 rw private 7:0
touch 96 r
touch 108 w
touch 116 r
touch 129 w
pagemap 96 36
truncate 7 10
pagemap 96 36
touch 108 r
touch 129 r
touch 105 r
touch 125 r
read 7 9
read 7 10
truncate 7 16
touch 108 r
touch 129 r
pagemap 96 36
truncate 7 0
touch 96 r
read 7 0
write 7 3
touch 99 r
touch 98 r`,
      `file 3 ok
mmap ok
touch ok min=1 maj=0
touch ok min=0 maj=0 val=90
read 3 0 val=3
touch ok min=1 maj=0 val=16
touch ok min=1 maj=0
touch ok min=0 maj=0 val=90
read 3 1 val=16
pagemap AAFFFFFF
write 3 2 ok
write 3 0 ok
touch ok min=0 maj=0 val=119
touch ok min=0 maj=0 val=90
evict 3 ok
touch ok min=1 maj=0
touch ok min=0 maj=0 val=94
pagemap AAFFFFAF
file 7 ok
mmap ok
mmap ok
touch ok min=1 maj=0 val=7
touch ok min=1 maj=0
touch ok min=1 maj=0 val=7
touch ok min=1 maj=0
pagemap FFFFFFFFFFFFFFFF....FFFFFFFFFFFFFAFF
truncate 7 ok
pagemap FFFFFFFFFF..........FFFFFFFFFF......
touch SIGBUS
touch SIGBUS
touch ok min=0 maj=0 val=124
touch ok min=0 maj=0 val=124
read 7 9 val=124
read 7 10 eof
truncate 7 ok
touch ok min=0 maj=1 val=0
touch ok min=1 maj=0 val=0
pagemap FFFFFFFFFFFFFFFF....FFFFFFFFFF..FFFF
truncate 7 ok
touch SIGBUS
read 7 0 eof
write 7 3 ok
touch ok min=1 maj=0 val=119
touch ok min=0 maj=1 val=0`,
    );
  });
});
