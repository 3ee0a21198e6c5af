// An example hidden test for Lab 1, kept with the autograder (never in the published handout). A test is
// the lab format's LabTest: id, title, points, category, optional parent, and run(ctx), which fails by
// throwing TestFailure. ctx.fn(file, name) gives the student's export.
import { PageTableBuilder, SIZE_2M, TestFailure, vaOf } from '@spf/labs/testing';

export const tests = [
  {
    id: 'hidden-2m-offset',
    title: 'Hidden: a 2 MiB page keeps the low 21 bits of the address',
    points: 10,
    category: 'functionality',
    parent: 'translate-4k',
    description: 'A read inside a 2 MiB page translates to the page base plus the 21-bit offset.',
    run(ctx) {
      const walk = ctx.fn('walk.ts', 'walk');
      const b = new PageTableBuilder();
      const va = vaOf(1, 2, 3, 0);
      b.map(va, 0x40000000n, { size: SIZE_2M });
      const r = walk(b.mem, b.regs(), va + 0x12345n, { kind: 'read', user: true });
      if (!r.ok || r.pa !== 0x40012345n)
        throw new TestFailure('a read at offset 0x12345 of a 2 MiB page', {
          expected: 'pa 0x40012345',
          actual: r.ok ? `pa 0x${r.pa.toString(16)}` : `fault ${r.fault}`,
        });
    },
  },
];
