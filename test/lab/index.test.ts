/** The inverted index: exact top-k equal to brute force (ties included), and its statistics by hand. */
import { describe, expect, it } from 'vitest';
import { InvertedIndex } from '../../src/lab/index.js';
import { compareHits, type Hit } from '../../src/lab/metrics.js';
import { lexicalMatchingScore, type LexicalWeights } from '../../src/scores.js';
import { mulberry32 as rng } from '../../src/rng.js';

function randomWeights(r: () => number, vocab: number, maxTerms: number, grid: boolean): LexicalWeights {
  const w: LexicalWeights = {};
  const n = 1 + Math.floor(r() * maxTerms);
  for (let i = 0; i < n; i++) w[String(Math.floor(r() * vocab))] = grid ? [0.5, 1, 2][Math.floor(r() * 3)]! : r() * 3;
  return w;
}

function bruteForce(ids: string[], docs: LexicalWeights[], q: LexicalWeights, k: number): Hit[] {
  const hits = docs.flatMap((d, i) => (Object.keys(q).some((t) => t in d) ? [{ id: ids[i]!, score: lexicalMatchingScore(q, d) }] : []));
  return hits.sort(compareHits).slice(0, k);
}

describe('InvertedIndex', () => {
  it.each([[1, true], [2, false], [3, true]])('equals brute-force scoring exactly (seed %i, tie-heavy grid weights: %s)', (seed, grid) => {
    const r = rng(seed);
    const N = 300;
    // Ids of mixed length and case so the descending-byte tie rule matters.
    const ids = Array.from({ length: N }, (_, i) => (i % 3 === 0 ? `D${i}` : i % 3 === 1 ? `d${i * 7}` : `doc-${N - i}`));
    const docs = ids.map(() => randomWeights(r, 60, 12, grid));
    const index = new InvertedIndex(ids, docs);
    let ties = 0;
    for (let qi = 0; qi < 20; qi++) {
      const q = randomWeights(r, 70, 6, grid);
      for (const k of [1, 10, 1000]) {
        const want = bruteForce(ids, docs, q, k);
        expect(index.search(q, k)).toEqual(want);
        if (k === 1000) ties += want.filter((h, i) => i > 0 && h.score === want[i - 1]!.score).length;
      }
    }
    if (grid) expect(ties).toBeGreaterThan(20); // the tie rule was exercised
  });

  it('statistics: non-zeros, FLOPS, postings touched and bytes (hand-computed)', () => {
    const index = new InvertedIndex(['a', 'b', 'c', 'd'], [{ 1: 1, 2: 1 }, { 1: 2 }, { 3: 1 }, { 1: 1, 3: 1, 4: 1 }]);
    // df: t1 = 3, t2 = 1, t3 = 2, t4 = 1; postings 7
    const s = index.stats([{ 1: 1 }, { 1: 1, 3: 2 }, { 9: 1 }]);
    expect(s.documents).toBe(4);
    expect(s.terms).toBe(4);
    expect(s.postings).toBe(7);
    expect(s.avgDocNonZeros).toBe(7 / 4);
    expect(s.avgQueryNonZeros).toBe(4 / 3);
    // p_q: t1 2/3, t3 1/3, t9 1/3; p_d: t1 3/4, t3 2/4, t9 0 -> FLOPS = 2/3·3/4 + 1/3·2/4 = 1/2 + 1/6 = 2/3
    expect(s.flops).toBeCloseTo(2 / 3, 12);
    // touched: q1 3, q2 3 + 2, q3 0 -> mean 8/3 = FLOPS · N = 2/3 · 4
    expect(s.postingsPerQuery).toBeCloseTo(8 / 3, 12);
    expect(s.postingsPerQuery).toBeCloseTo(s.flops * s.documents, 12);
    expect(s.bytes).toBe(7 * 12);
  });

  it('ranks only documents sharing a term, and refuses bad input', () => {
    const index = new InvertedIndex(['a', 'b'], [{ 5: 1 }, { 6: 1 }]);
    expect(index.search({ 5: 2, 7: 1 }, 10)).toEqual([{ id: 'a', score: 2 }]);
    expect(index.search({ 8: 1 }, 10)).toEqual([]);
    expect(() => index.search({ 5: 1 }, 0)).toThrow(/k must be an integer >= 1/);
    expect(() => index.search({ x: 1 } as LexicalWeights, 1)).toThrow(/query: key "x" is not a token id/);
    expect(() => new InvertedIndex(['a'], [{ 1: NaN }])).toThrow(/document "a": weight of token 1 is null/);
    expect(() => new InvertedIndex(['a', 'a'], [{}, {}])).toThrow(/ids must be distinct/);
  });
});
