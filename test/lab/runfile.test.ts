/** TREC run files: trec_eval's order and ranks, exact round trip, no overwrite without force, no partial file. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readRunFile, writeRunFile } from '../../src/lab/runfile.js';

const dir = mkdtempSync(join(tmpdir(), 'runfile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('run files', () => {
  it('writes qid Q0 docid rank score tag in trec_eval order and reads back the same scores', async () => {
    const path = join(dir, 'a.trec');
    const score = 0.1 + 0.2; // 0.30000000000000004 must survive the round trip
    await writeRunFile(path, new Map([['q1', [{ id: 'd1', score: 1 }, { id: 'd3', score }, { id: 'd2', score }]]]), 'lab');
    expect(readFileSync(path, 'utf8')).toBe('q1 Q0 d1 1 1 lab\nq1 Q0 d3 2 0.30000000000000004 lab\nq1 Q0 d2 3 0.30000000000000004 lab\n');
    const back = await readRunFile(path);
    expect(back.get('q1')!.map((h) => [h.id, h.score])).toEqual([['d1', 1], ['d3', score], ['d2', score]]);
  });

  it('refuses to overwrite without force, replaces with force, and leaves no temporary file', async () => {
    const path = join(dir, 'b.trec');
    writeFileSync(path, 'precious\n');
    const run = new Map([['q', [{ id: 'd', score: 2 }]]]);
    await expect(writeRunFile(path, run, 't')).rejects.toThrow(/b\.trec exists; pass --force/);
    expect(readFileSync(path, 'utf8')).toBe('precious\n');
    await writeRunFile(path, run, 't', { force: true });
    expect(readFileSync(path, 'utf8')).toBe('q Q0 d 1 2 t\n');
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses ids it cannot write and leaves nothing behind', async () => {
    const path = join(dir, 'c.trec');
    await expect(writeRunFile(path, new Map([['q', [{ id: 'has space', score: 1 }]]]), 't')).rejects.toThrow(/document id "has space" cannot be written/);
    await expect(writeRunFile(path, new Map([['q', [{ id: 'd', score: NaN }]]]), 't')).rejects.toThrow(/score NaN/);
    expect(readdirSync(dir).filter((f) => f.startsWith('.c.trec') || f === 'c.trec')).toEqual([]);
  });

  it('names file and line of a bad line', async () => {
    const path = join(dir, 'd.trec');
    writeFileSync(path, 'q Q0 d 1 1 t\nq Q0 e 2 x t\n');
    await expect(readRunFile(path)).rejects.toThrow(/d\.trec:2: score must be a finite number/);
    writeFileSync(path, 'q Q0 d 1 1\n');
    await expect(readRunFile(path)).rejects.toThrow(/d\.trec:1: expected 6 fields/);
  });
});
