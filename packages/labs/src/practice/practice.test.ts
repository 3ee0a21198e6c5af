import { referenceWalk, type WalkAccess } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { TestMemory } from '../lab1/page-table-builder.js';
import { lab1Practice } from './lab1-practice.js';
import { lab2Practice } from './lab2-practice.js';
import { formatExercise, PracticeError } from './practice.js';
import { practiceExercise } from './practice-registry.js';

const SEEDS = Array.from({ length: 40 }, (_, i) => i * 7919 + 1);

describe('practice exercises', () => {
  it('are the same for the same seed and vary with the seed', () => {
    for (const lab of ['lab1', 'lab2']) {
      expect(practiceExercise(lab, 7)).toEqual(practiceExercise(lab, 7));
      const questions = new Set(SEEDS.map((s) => practiceExercise(lab, s).question.join('\n')));
      expect(questions.size).toBeGreaterThan(SEEDS.length * 0.9);
    }
  });

  it('Lab 1: the answer is what the walk does with the state the question shows', () => {
    const outcomes = new Set<string>();
    for (const seed of SEEDS) {
      const ex = lab1Practice(seed);
      // Rebuild the state from the question's text alone, and walk it independently.
      const q = ex.question.join('\n');
      const bit = (name: string) => new RegExp(`${name} = (\\d)`).exec(q)?.[1] === '1';
      const mem = new TestMemory();
      for (const m of q.matchAll(/pa +(0x[0-9a-f]+): +(0x[0-9a-f]+)/g))
        mem.entries.set(BigInt(m[1]), BigInt(m[2]));
      const [, mode, kind, va] =
        /a (user|supervisor)-mode (read of|write to|instruction fetch from) va (0x[0-9a-f]+)/.exec(q) ?? [];
      const access: WalkAccess = {
        user: mode === 'user',
        kind: kind === 'write to' ? 'write' : kind === 'read of' ? 'read' : 'fetch',
      };
      const r = referenceWalk(
        mem,
        {
          cr3: BigInt(/CR3 = (0x[0-9a-f]+)/.exec(q)?.[1] ?? '0'),
          wp: bit('CR0.WP'),
          smep: bit('CR4.SMEP'),
          smap: bit('CR4.SMAP'),
          nxe: bit('EFER.NXE'),
          pke: false,
          la57: false,
          ac: false,
          pkru: 0,
          maxPhyAddr: 46,
        },
        BigInt(va),
        access,
      );
      const got = r.ok
        ? `pa 0x${r.pa.toString(16)}`
        : r.fault === 'GP'
          ? '#GP'
          : `#PF 0x${r.errorCode.toString(16)}`;
      expect(ex.facts.result, `seed ${seed}`).toBe(got);
      expect(ex.answer.at(-1)).toContain(got.replace('#PF ', 'error code ').replace('pa ', 'pa '));
      outcomes.add(got.split(' ')[0]);
    }
    // Both translations and faults come up.
    expect(outcomes).toEqual(new Set(['pa', '#PF']));
  });

  it('Lab 2: the answers are the run of the interleaving shown (seqcount and rwsem)', () => {
    const kinds = new Set<string>();
    const retries = new Set<string>();
    for (const seed of SEEDS) {
      const ex = lab2Practice(seed);
      kinds.add(ex.title);
      expect(ex.facts.schedule).toMatch(/^s1:/);
      if ('retry' in ex.facts) {
        retries.add(ex.facts.retry);
        // A seqcount's guarantee, seen in the machine's run: s is even, and an accepted read is not torn.
        expect(Number(ex.facts.s) % 2).toBe(0);
        if (ex.facts.retry === 'false') expect(ex.facts.a).toBe(ex.facts.b);
        // The interleaving shown has the reader's loads of x and y.
        expect(ex.question.join('\n')).toMatch(/read x[\s\S]*read y/);
      } else {
        expect(ex.facts.order.split(',').sort()).toEqual(['reader0', 'reader2', 'writer']);
        // Who slept is who blocked in the interleaving shown.
        for (const t of ex.facts.slept ? ex.facts.slept.split(',') : [])
          expect(ex.question.join('\n')).toMatch(new RegExp(`\\(${t}\\): [^\\n]*block sem`));
      }
    }
    expect(kinds.size).toBe(2);
    expect(retries).toEqual(new Set(['true', 'false']));
  });

  it('prints the question, and the answers only with -c; refuses a bad seed or lab', () => {
    const ex = practiceExercise('lab1', 7);
    const plain = formatExercise(ex, false);
    const full = formatExercise(ex, true);
    expect(plain).toContain('Question: a ');
    expect(plain).not.toContain(ex.answer.at(-1));
    expect(full.startsWith(plain.split('\n\nWork it out')[0])).toBe(true);
    expect(full).toContain(ex.answer.at(-1));
    expect(() => practiceExercise('lab1', -1)).toThrow(PracticeError);
    expect(() => practiceExercise('lab1', 1.5)).toThrow(/whole number/);
    expect(() => practiceExercise('lab9', 1)).toThrow(/no practice for 'lab9'/);
  });
});
