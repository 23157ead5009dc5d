/**
 * Mode weights of the combined scores: huge weights must not overflow (the average is scale-free), and
 * weights that cannot weight an average (NaN, Infinity, negative, all zero) are refused by name.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { checkModeWeights, combineScores, type ModeWeights } from '../../src/scores.js';
import { run as runScore } from '../../src/cli/score.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { loadCases, maxAbsDiff, Reference } from '../helpers/reference.js';

/** Every combined score of the reference's score matrices under weights `w`. */
function combined(s: Reference['json']['scores'], w: ModeWeights): { sd: number[]; csd: number[] } {
  const sd: number[] = [];
  const csd: number[] = [];
  s.dense.forEach((row, i) => row.forEach((d, j) => {
    const c = combineScores(d, s.sparse[i]![j]!, s.colbert[i]![j]!, w);
    sd.push(c['sparse+dense']);
    csd.push(c['colbert+sparse+dense']);
  }));
  return { sd, csd };
}

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, done: () => void): void { this.text += chunk.toString(); done(); }
}

describe('combined-score weights', () => {
  it('scales the weights away: 1e308-sized weights give the reference combinations, all finite', async () => {
    const ref = await Reference.open('sharp-m3');
    const s = ref.json.scores;
    for (const { weights, 'sparse+dense': sd, 'colbert+sparse+dense': csd } of s.weighted) {
      // The largest weight becomes 1, 1e308 (the sums overflow) and 1e-300 (the products underflow).
      for (const top of [1, 1e308, 1e-300]) {
        const w = weights.map((x) => (x / Math.max(...weights)) * top) as unknown as ModeWeights;
        const got = combined(s, w);
        expect(got.sd.every(Number.isFinite) && got.csd.every(Number.isFinite), `weights ${w}`).toBe(true);
        const err = Math.max(maxAbsDiff(got.sd, sd.flat()), maxAbsDiff(got.csd, csd.flat()));
        console.log(`weights ${w.map((x) => x.toExponential(2)).join(',')}: max abs error vs reference ${err.toExponential(2)}`);
        expect(err).toBeLessThanOrEqual(1e-12);
      }
    }
    await ref.close();
  });

  it('refuses NaN, Infinity, negative and all-zero weights naming the argument', () => {
    const bad: Array<[number[], RegExp]> = [
      [[NaN, 1, 1], /three finite numbers/],
      [[Infinity, 1, 1], /three finite numbers/],
      [[1e309, 1e308, 1e308], /three finite numbers/],
      [[1, -1, 1], /must not be negative/],
      [[-1e308, 1, 1], /must not be negative/],
      [[0, 0, 0], /sum to 0/],
      [[0, 0, 1], /sum to 0/],
    ];
    for (const [w, re] of bad) {
      expect(() => checkModeWeights(w, '--weights'), JSON.stringify(w)).toThrow(re);
      expect(() => checkModeWeights(w, '--weights')).toThrow(/--weights/);
      expect(() => combineScores(0.5, 0.5, 0.5, w as unknown as ModeWeights), JSON.stringify(w)).toThrow(re);
    }
    // Subnormal weights still average correctly (0.5·a + 0.5·b), and a tiny dense weight next to a huge
    // ColBERT weight still gives sparse+dense = dense (the pair's own largest weight is the scale).
    expect(combineScores(0.2, 0.4, 0.9, [5e-324, 5e-324, 0])['sparse+dense']).toBeCloseTo(0.3, 15);
    const skewed = combineScores(0.2, 0.4, 0.9, [1e-320, 0, 1e300]);
    expect(skewed['sparse+dense']).toBe(0.2);
    expect(skewed['colbert+sparse+dense']).toBe(0.9);
  });

  it('bge-m3 score --weights 1e308,1e308,1e308 prints the 1,1,1 combinations (in process, tiny-m3)', async () => {
    const ref = await Reference.open('tiny-m3');
    const s = ref.json.scores;
    const byId = new Map(loadCases().map((c) => [c.id, c]));
    const dir = mkdtempSync(join(tmpdir(), 'bge-m3-weights-'));
    const file = (name: string, ids: string[]): string => {
      const path = join(dir, name);
      writeFileSync(path, ids.map((id) => JSON.stringify({ id, text: byId.get(id)!.text })).join('\n') + '\n');
      return path;
    };
    const stdout = new Capture();
    const stderr = new Capture();
    const code = await runScore(['--model', checkpointDir('tiny-m3'), '--queries', file('q.jsonl', s.queries),
      '--passages', file('p.jsonl', s.passages), '--weights', '1e308,1e308,1e308', '--max-query-length', '8192', '--backend', 'cpu'],
    { stdout, stderr });
    expect(code, stderr.text).toBe(0);
    const got = JSON.parse(stdout.text);
    const want = s.weighted.find((w) => w.weights.every((x) => x === 1))!;
    for (const k of ['sparse+dense', 'colbert+sparse+dense'] as const) {
      const flat = (got[k] as number[][]).flat();
      expect(flat.every((x) => typeof x === 'number' && Number.isFinite(x)), k).toBe(true);
      const err = maxAbsDiff(flat, want[k].flat());
      console.log(`CLI ${k} with 1e308 weights: max abs error vs reference ${err.toExponential(2)}`);
      expect(err).toBeLessThanOrEqual(1e-4);
    }
    await ref.close();
  });
});
