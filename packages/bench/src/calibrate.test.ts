import { spawnSync } from 'node:child_process';
import { compileC, HostUnavailableError } from '@spf/kernel';
import { describe, expect, it } from 'vitest';
import {
  CALIBRATION_PROGRAMS,
  CalibrationError,
  calibrate,
  calibrationSourceDir,
  parseCalibrationOutput,
} from './calibrate.js';
import { parseCostProfile } from './cost-profile.js';

/** What the programs print on some host (figures made up; the parse and the profile are under test). */
const CANNED: Record<string, string> = {
  'page-ops.c': 'zero_page_ns 190.5\ncopy_page_ns 326.8\n',
  'line-transfer.c': 'line_transfer_ns 214.9\n',
  'syscall.c': 'syscall_ns 95.0\n',
  'anon-fault.c': 'anon_fault_ns 1800.0\n',
};

function fakeHost(out: Record<string, string> = CANNED) {
  return {
    compile: (source: string) => source,
    run: (exe: string) => out[exe.slice(exe.lastIndexOf('/') + 1)],
  };
}

describe('spf calibrate', () => {
  it("parses the programs' output into figures, and refuses anything else naming the program", () => {
    expect(
      parseCalibrationOutput('zero_page_ns 190.5\ncopy_page_ns 326\n', 'page-ops.c', [
        'zero_page_ns',
        'copy_page_ns',
      ]),
    ).toEqual({
      zero_page_ns: 190.5,
      copy_page_ns: 326,
    });
    expect(() => parseCalibrationOutput('syscall_ns fast\n', 'syscall.c', ['syscall_ns'])).toThrow(
      /syscall.c printed "syscall_ns fast"; expected "<key> <number>"/,
    );
    expect(() => parseCalibrationOutput('', 'syscall.c', ['syscall_ns'])).toThrow(
      /syscall.c did not print syscall_ns/,
    );
    expect(() => parseCalibrationOutput('other_ns 1\n', 'syscall.c', ['syscall_ns'])).toThrow(
      /unknown figure other_ns/,
    );
    expect(() => parseCalibrationOutput('syscall_ns 1\nsyscall_ns 2\n', 'syscall.c', ['syscall_ns'])).toThrow(
      /twice/,
    );
  });

  it('turns the figures into a profile that the --profile loader accepts, entry by entry', () => {
    const p = calibrate({ host: fakeHost() });
    expect(p.cost).toEqual({ zeroPage: 190.5, copyPage: 326.8, lineTransfer: 214.9, syscall: 95 });
    expect(p.measured?.anon_fault_ns).toBe(1800);
    // The model's own single-CPU fault with this profile is recorded beside the host's.
    expect(p.measured?.model_anon_fault_ns).toBeGreaterThan(190.5);
    const text = JSON.stringify(p, null, 2);
    expect(parseCostProfile(text, 'spf-cost-profile.json')).toEqual(p);
  });

  it('keeps the default line transfer when the host could not measure one (one CPU)', () => {
    const p = calibrate({ host: fakeHost({ ...CANNED, 'line-transfer.c': 'line_transfer_ns -1\n' }) });
    expect(p.cost.lineTransfer).toBeUndefined();
    expect(String(p.host?.notes)).toMatch(/fewer than two CPUs/);
  });

  it('without a C compiler, says which compiler it needs and what to install', () => {
    const host = {
      compile: (): string => {
        throw new HostUnavailableError(
          'cannot run the C compiler `cc` (spawnSync cc ENOENT); install gcc or clang',
        );
      },
      run: () => '',
    };
    expect(() => calibrate({ host })).toThrow(CalibrationError);
    expect(() => calibrate({ host })).toThrow(/needs a C compiler called cc: .*ENOENT.*apt-get install gcc/);
  });

  it('a program that prints something unexpected stops calibration with its name', () => {
    expect(() => calibrate({ host: fakeHost({ ...CANNED, 'syscall.c': 'oops\n' }) })).toThrow(
      /syscall.c printed "oops"/,
    );
  });

  it.skipIf(spawnSync('cc', ['--version']).status !== 0)(
    'every program source compiles, and syscall.c prints what the parser expects (on a Linux host with cc)',
    () => {
      for (const p of CALIBRATION_PROGRAMS) {
        const r = spawnSync(
          'cc',
          ['-O1', '-std=gnu11', '-Wall', '-Werror', '-fsyntax-only', `${calibrationSourceDir()}${p.file}`],
          { encoding: 'utf8' },
        );
        expect(r.stderr, p.file).toBe('');
        expect(r.status, p.file).toBe(0);
      }
      const exe = compileC(`${calibrationSourceDir()}syscall.c`, 'calibrate');
      const run = spawnSync(exe, [], { encoding: 'utf8' });
      expect(run.status).toBe(0);
      const figures = parseCalibrationOutput(run.stdout, 'syscall.c', ['syscall_ns']);
      expect(figures.syscall_ns).toBeGreaterThan(0);
    },
  );
});
