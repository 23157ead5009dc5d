/** trec_eval semantics on hand-computed cases: the arithmetic is written next to each expectation. */
import { describe, expect, it } from 'vitest';
import { compareBytes, evaluateRun, queryMetrics, rankHits, type Hit } from '../../src/lab/metrics.js';

const hits = (...pairs: Array<[string, number]>): Hit[] => pairs.map(([id, score]) => ({ id, score }));
const judged = (...pairs: Array<[string, number]>): Map<string, number> => new Map(pairs);

describe('trec_eval ranking', () => {
  it('sorts by score descending, ties by document id descending (comp_sim_docno)', () => {
    const ranked = rankHits(hits(['a', 1], ['c', 2], ['b', 1], ['d', 1], ['B', 1]));
    // score 2 first; then the score-1 ties in descending byte order: d > b > a > B ('B' = 0x42 < 'a' = 0x61)
    expect(ranked.map((h) => h.id)).toEqual(['c', 'd', 'b', 'a', 'B']);
  });

  it('compares ids as UTF-8 bytes, as strcmp does', () => {
    // U+FF61 is EF BD A1 in UTF-8, U+1F600 is F0 9F 98 80: bytewise U+FF61 < U+1F600,
    // though in UTF-16 units 0xFF61 > 0xD83D (the surrogate) and JS '<' says the opposite.
    expect('\uFF61' > '\u{1F600}').toBe(true);
    expect(compareBytes('\uFF61', '\u{1F600}')).toBeLessThan(0);
  });
});

describe('per-query measures (hand-computed)', () => {
  it('graded nDCG@10, MRR@10, Recall@100 and AP', () => {
    // Ranked: d1 (grade 0), d2 (grade 2), d3 (unjudged), d4 (grade 1). Judged relevant: d2 (2), d4 (1), d5 (3, not retrieved).
    const m = queryMetrics(hits(['d1', 0.9], ['d2', 0.8], ['d3', 0.7], ['d4', 0.6]), judged(['d1', 0], ['d2', 2], ['d4', 1], ['d5', 3]));
    // DCG = 2/log2(3) + 1/log2(5) = 1.261860 + 0.430677 = 1.692536
    // IDCG (grades 3, 2, 1) = 3/log2(2) + 2/log2(3) + 1/log2(4) = 3 + 1.261860 + 0.5 = 4.761860
    expect(m['ndcg@10']).toBeCloseTo((2 / Math.log2(3) + 1 / Math.log2(5)) / (3 + 2 / Math.log2(3) + 0.5), 12);
    expect(m['ndcg@10']).toBeCloseTo(0.355436, 6); // 1.692536 / 4.761860;
    expect(m['mrr@10']).toBe(1 / 2); // first relevant at rank 2
    expect(m['recall@100']).toBe(2 / 3); // d2, d4 of d2, d4, d5
    expect(m.map).toBeCloseTo((1 / 2 + 2 / 4) / 3, 12); // precision at ranks 2 and 4, over 3 relevant = 1/3
  });

  it('cuts at 10 and 100: relevant hits at ranks 11 and 106', () => {
    const ranked: Array<[string, number]> = Array.from({ length: 120 }, (_, i) => [`d${String(i).padStart(3, '0')}`, 1000 - i]);
    const m = queryMetrics(hits(...ranked), judged(['d010', 1], ['d105', 1]));
    expect(m['ndcg@10']).toBe(0); // rank 11 and 106: none in the top 10
    expect(m['mrr@10']).toBe(0);
    expect(m['recall@100']).toBe(1 / 2); // rank 11 is within 100, rank 106 is not
    expect(m.map).toBeCloseTo((1 / 11 + 2 / 106) / 2, 12);
  });

  it('ties decide the ranks: the descending-id rule puts "b" ahead of "a"', () => {
    // equal scores: ranked b, a. Only a is relevant -> rank 2.
    const m = queryMetrics(hits(['a', 0.5], ['b', 0.5]), judged(['a', 1]));
    expect(m['mrr@10']).toBe(0.5);
    expect(m['ndcg@10']).toBeCloseTo(1 / Math.log2(3), 12); // DCG 1/log2(3), IDCG 1
  });

  it('negative grades are not relevant and add no gain', () => {
    const m = queryMetrics(hits(['x', 2], ['y', 1]), judged(['x', -1], ['y', 1]));
    expect(m['mrr@10']).toBe(0.5);
    expect(m['ndcg@10']).toBeCloseTo(1 / Math.log2(3), 12);
  });
});

describe('evaluateRun', () => {
  it('averages over queries with a relevant judgment; a judged query without hits scores 0', () => {
    const qrels = new Map([
      ['q1', judged(['a', 1])], // hit at rank 1: every measure 1
      ['q2', judged(['b', 1])], // no hits: every measure 0
      ['q3', judged(['c', 0])], // nothing relevant: skipped
    ]);
    const run = new Map([['q1', hits(['a', 3], ['z', 1])], ['q3', hits(['c', 1])]]);
    const e = evaluateRun(run, qrels);
    expect(e.queries).toBe(2);
    expect(e.skipped).toBe(1);
    expect(e.mean).toEqual({ 'ndcg@10': 0.5, 'mrr@10': 0.5, 'recall@100': 0.5, map: 0.5 });
    expect([...e.perQuery.keys()]).toEqual(['q1', 'q2']);
  });
});
