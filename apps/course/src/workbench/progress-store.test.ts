import { labOutline, lab1 } from '@spf/labs';
import { describe, expect, it } from 'vitest';
import {
  exportProgress,
  importOverwrites,
  importProgress,
  type KeyValueStore,
  latestProgress,
  loadFullMarksSolution,
  loadProgress,
  ProgressImportError,
  progressKey,
  SOLUTION_PREFIX,
  saveFullMarksSolution,
  saveProgress,
} from './progress-store.js';

class MemoryStore implements KeyValueStore {
  readonly map = new Map<string, string>();
  getItem(k: string) {
    return this.map.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.map.set(k, v);
  }
  get length() {
    return this.map.size;
  }
  key(i: number) {
    return [...this.map.keys()][i] ?? null;
  }
}

const v1 = labOutline(lab1);
const v2 = { ...v1, version: v1.version + 1 };

describe('progress store', () => {
  it('saves under the lab id and version and loads it back', () => {
    const s = new MemoryStore();
    const p = loadProgress(s, v1);
    p.files['walk.ts'] = 'my code';
    saveProgress(s, p);
    expect(s.map.has(progressKey('lab1', v1.version))).toBe(true);
    expect(loadProgress(s, v1).files['walk.ts']).toBe('my code');
  });

  it('migrates to a new lab version keeping the code, dropping the stale report, keeping the old record', () => {
    const s = new MemoryStore();
    const p = loadProgress(s, v1);
    p.files['walk.ts'] = 'my code';
    p.hintsShown = 2;
    p.bestScore = 100;
    p.lastReport = {
      lab: 'lab1',
      version: 1,
      status: 'complete',
      score: 100,
      maxScore: 100,
      results: [],
      error: null,
    };
    saveProgress(s, p);
    const m = loadProgress(s, v2);
    expect(m.version).toBe(v2.version);
    expect(m.files['walk.ts']).toBe('my code');
    expect(m.hintsShown).toBe(2);
    expect(m.lastReport).toBeNull();
    expect(m.bestScore).toBe(0);
    expect(m.migratedFrom).toBe(v1.version);
    expect(s.map.has(progressKey('lab1', v1.version))).toBe(true);
    expect(latestProgress(s, 'lab1')?.version).toBe(v2.version);
  });

  it('exports everything and imports it into an empty store', () => {
    const a = new MemoryStore();
    const p = loadProgress(a, v1);
    p.files['walk.ts'] = 'exported code';
    saveProgress(a, p);
    a.setItem('unrelated', 'x');
    const json = JSON.stringify(exportProgress(a));
    const b = new MemoryStore();
    expect(importProgress(b, json)).toBe(1);
    expect(loadProgress(b, v1).files['walk.ts']).toBe('exported code');
    expect(b.map.has('unrelated')).toBe(false);
  });

  it('rejects a file that is not exported progress and changes nothing', () => {
    const s = new MemoryStore();
    saveProgress(s, { ...loadProgress(s, v1), files: { 'walk.ts': 'keep me' } });
    expect(() => importProgress(s, 'not json')).toThrow(ProgressImportError);
    expect(() => importProgress(s, '{"format":"other"}')).toThrow(/not spf course progress/);
    const bad = {
      format: 'spf-course-progress',
      formatVersion: 1,
      entries: {
        [progressKey('lab1', 1)]: { lab: 'lab1', version: 1, files: { 'walk.ts': 'new' } },
        'spf-course:lab:x:v1': { lab: 'y', version: 1, files: {} },
      },
    };
    expect(() => importProgress(s, JSON.stringify(bad))).toThrow(/malformed; nothing was imported/);
    expect(loadProgress(s, v1).files['walk.ts']).toBe('keep me');
  });

  it('says which saved code an import would replace, before writing anything', () => {
    const a = new MemoryStore();
    saveProgress(a, { ...loadProgress(a, v1), files: { 'walk.ts': 'exported code' } });
    const json = JSON.stringify(exportProgress(a));
    // Same code stored: nothing would be lost.
    expect(importOverwrites(a, json)).toEqual([]);
    // Nothing stored: nothing would be lost.
    expect(importOverwrites(new MemoryStore(), json)).toEqual([]);
    // Different code stored: the import would replace walk.ts, and asking changes nothing.
    const b = new MemoryStore();
    saveProgress(b, { ...loadProgress(b, v1), files: { 'walk.ts': 'newer work' } });
    expect(importOverwrites(b, json)).toEqual([{ lab: 'lab1', version: v1.version, files: ['walk.ts'] }]);
    expect(loadProgress(b, v1).files['walk.ts']).toBe('newer work');
    expect(() => importOverwrites(b, 'not json')).toThrow(ProgressImportError);
  });
});

describe('full-marks solutions for later labs', () => {
  it('keeps the latest full-marks solution of a lab, whatever its version', () => {
    const store = new MemoryStore();
    expect(loadFullMarksSolution(store, 'lab3')).toBeNull();
    saveFullMarksSolution(store, { lab: 'lab3', version: 1, files: { 'a.ts': 'one' } });
    saveFullMarksSolution(store, { lab: 'lab3', version: 2, files: { 'a.ts': 'two' } });
    expect(loadFullMarksSolution(store, 'lab3')).toEqual({
      lab: 'lab3',
      version: 2,
      files: { 'a.ts': 'two' },
    });
    expect(loadFullMarksSolution(store, 'lab4')).toBeNull();
  });

  it('ignores a record that is not a solution (edited by hand, another lab, damaged)', () => {
    const store = new MemoryStore();
    for (const bad of ['{', 'null', '{"lab":"lab4","files":{}}', '{"lab":"lab3","files":{"a.ts":3}}']) {
      store.setItem(`${SOLUTION_PREFIX}lab3`, bad);
      expect(loadFullMarksSolution(store, 'lab3')).toBeNull();
    }
  });
});
