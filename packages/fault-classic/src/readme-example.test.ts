// The usage example of README.md, kept here so it is known to work.
import { defaultCostModel, runSync } from '@spf/machine';
import { PF_USER, PF_WRITE, PhysicalMemory } from '@spf/pagetable';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MmStruct,
  mmapSync,
  PagetableOps,
  PROT_READ,
  PROT_WRITE,
} from '@spf/vma';
import { expect, it } from 'vitest';
import { doUserAddrFault, makeFaultEnv, TaskFaultCounters } from './index.js';

it('README example', () => {
  const mem = new PhysicalMemory({ size: 64 * 1024 * 1024 });
  const env = makeFaultEnv({ mem, cost: defaultCostModel });
  const mm = new MmStruct({ pageTables: PagetableOps.factory({ env }) });
  const pt = mm.pgd;
  const task = new TaskFaultCounters();

  const map = mmapSync(mm, {
    addr: 0,
    len: 4096,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS,
  });
  if (!map.ok) throw new Error(`mmap: errno ${map.errno}`);
  const addr = map.value;

  // A user-mode write to a page that is not present: #PF error code U|W.
  const out = runSync(doUserAddrFault(env, { mm, address: addr, errorCode: PF_USER | PF_WRITE, task }));
  console.log(out, task.minflt, pt.translate(addr) !== null); // { kind: 'handled' } 1 true

  // A write below the mapping: no VMA there.
  const bad = runSync(
    doUserAddrFault(env, { mm, address: addr - 4096, errorCode: PF_USER | PF_WRITE, task }),
  );
  console.log(bad); // { kind: 'sigsegv', code: 'MAPERR', address: ... }

  expect(out).toEqual({ kind: 'handled' });
  expect(task.minflt).toBe(1);
  expect(pt.translate(addr)).not.toBeNull();
  expect(bad).toEqual({ kind: 'sigsegv', code: 'MAPERR', address: addr - 4096 });
});
