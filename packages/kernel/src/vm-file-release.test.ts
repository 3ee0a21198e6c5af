import { classicFaultHandler } from '@spf/fault-classic';
import type { Kernel } from '@spf/machine';
import {
  errnoName,
  getVma,
  MAP_FIXED,
  MAP_SHARED,
  PROT_READ,
  putVma,
  type SysResult,
  type VmFileRelease,
} from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { O_CREAT, O_RDWR, O_TRUNC } from './file-syscalls.js';
import { BootConfigError, boot, type System } from './system.js';
import type { UserContext } from './user-context.js';

/**
 * Issue 14 item 4 (Lespinasse's question 2): where `vm_file` is released decides how long umount(2) keeps
 * saying EBUSY after munmap returned. Each program maps a file whose fd is already closed, so the VMA's
 * reference is the file's last one.
 */

const A = 0x5000_0000;
const PAGE = 4096;

function show(r: SysResult<unknown>): string {
  return r.ok ? 'ok' : errnoName(r.errno);
}

/** Opens `f`, writes 4 pages, maps them shared at A, closes the fd and touches page 0 (a file fault). */
function* mapClosedFile(u: UserContext): Kernel<void> {
  const fd = yield* u.open('f', O_RDWR | O_CREAT | O_TRUNC);
  if (!fd.ok) throw new Error(`open failed: ${errnoName(fd.errno)}`);
  yield* u.pwrite(fd.value, 0, new Uint8Array(4 * PAGE).fill(9));
  const m = yield* u.mmap(A, 4 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, fd.value, 0);
  if (!m.ok) throw new Error(`mmap failed: ${errnoName(m.errno)}`);
  yield* u.close(fd.value);
  if ((yield* u.load8(A)) !== 9) throw new Error('the mapped file reads wrong data');
}

/** Boots a system with `vmFileRelease`, runs `program` as a process and returns what it recorded. */
function run(
  vmFileRelease: VmFileRelease,
  program: (u: UserContext, sys: System, out: string[]) => Kernel<void>,
): string[] {
  // The classic handler, whatever the test matrix's default: these windows describe an mm without SPF v12's
  // tree bookkeeping. Under dufourSpf the tree's own VMA reference is dropped through call_rcu (vm_rcu_put),
  // which moves the freeVma window past a grace period too; bench/vm-file-window.ts measures that case.
  const sys = boot({ vmFileRelease, faultHandler: classicFaultHandler });
  const out: string[] = [];
  sys.spawnProcess('vmfile', (u) => program(u, sys, out));
  const r = sys.run();
  expect(r.ok, r.failure?.message).toBe(true);
  return out;
}

describe('vmFileRelease: how long umount says EBUSY after munmap returns', () => {
  it('removeVma (Linux, SPF v12): the file is released by munmap itself, even while a VMA reference is held', () => {
    const out = run('removeVma', function* (u, _sys, out) {
      yield* mapClosedFile(u);
      const vma = u.process.mm.findVma(A);
      if (vma === null) throw new Error('no VMA at A');
      yield* getVma(vma); // a speculative fault's reference (SPF v12's get_vma())
      yield* u.munmap(A, 4 * PAGE);
      out.push(`after munmap ${show(yield* u.umount())}`);
      yield* putVma(vma);
    });
    expect(out).toEqual(['after munmap ok']);
  });

  it('freeVma (Lespinasse 2019): EBUSY until the last speculative VMA reference drops, then 0', () => {
    const out = run('freeVma', function* (u, _sys, out) {
      yield* mapClosedFile(u);
      const vma = u.process.mm.findVma(A);
      if (vma === null) throw new Error('no VMA at A');
      yield* getVma(vma); // a speculative fault's reference, which now keeps vm_file alive
      yield* u.munmap(A, 4 * PAGE);
      out.push(`after munmap ${show(yield* u.umount())}`);
      out.push(`again ${show(yield* u.umount())}`);
      yield* putVma(vma); // the fault is done: __free_vma() drops the file
      out.push(`after the last put_vma ${show(yield* u.umount())}`);
    });
    expect(out).toEqual(['after munmap EBUSY', 'again EBUSY', 'after the last put_vma ok']);
  });

  it('freeVma with no speculative reference: munmap drops the last VMA reference, so umount gives 0 at once', () => {
    const out = run('freeVma', function* (u, _sys, out) {
      yield* mapClosedFile(u);
      yield* u.munmap(A, 4 * PAGE);
      out.push(`after munmap ${show(yield* u.umount())}`);
    });
    expect(out).toEqual(['after munmap ok']);
  });

  it('rcu (Lespinasse 2021, delayed fput): EBUSY until an RCU grace period has passed, then 0', () => {
    const out = run('rcu', function* (u, sys, out) {
      yield* mapClosedFile(u);
      yield* u.munmap(A, 4 * PAGE);
      out.push(`after munmap ${show(yield* u.umount())}`);
      yield* sys.rcu.synchronize();
      out.push(`after a grace period ${show(yield* u.umount())}`);
    });
    expect(out).toEqual(['after munmap EBUSY', 'after a grace period ok']);
  });

  it('an unknown vmFileRelease is refused at boot with a message naming the choices', () => {
    expect(() => boot({ vmFileRelease: 'exitMmap' as VmFileRelease })).toThrow(BootConfigError);
    expect(() => boot({ vmFileRelease: 'exitMmap' as VmFileRelease })).toThrow(
      /vmFileRelease must be one of 'removeVma', 'freeVma', 'rcu', got "exitMmap"/,
    );
  });
});
