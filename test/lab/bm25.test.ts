/** bm25 and idf heads: Lucene's BM25 on token ids, checked against hand arithmetic through the index. */
import { describe, expect, it } from 'vitest';
import { Bm25Head, corpusStats } from '../../src/lab/heads/bm25.js';
import { IdfHead } from '../../src/lab/heads/idf.js';
import { InvertedIndex } from '../../src/lab/index.js';

const SPECIAL = new Set([0, 1, 2, 3]); // <s> <pad> </s> <unk>
// d1: terms 10 ×2, 11 (|d| = 3); d2: 11, 12 (|d| = 2); d3: 13 and an <unk> (|d| = 1). N = 3, avgdl = 6/3 = 2.
const DOCS = [[0, 10, 11, 10, 2], [0, 11, 12, 2], [0, 13, 3, 2]];
const QUERY = [0, 11, 10, 11, 2]; // 11 twice, 10 once

describe('bm25 head', () => {
  it('learns N, df and avgdl without special ids', () => {
    const s = corpusStats(DOCS, SPECIAL);
    expect(s.docs).toBe(3);
    expect(s.avgdl).toBe(2);
    expect([...s.df]).toEqual([[10, 1], [11, 2], [12, 1], [13, 1]]);
  });

  it('the sparse dot product equals Lucene BM25 with query terms counted per occurrence (k1 0.9, b 0.4)', async () => {
    const head = new Bm25Head(SPECIAL);
    head.fit(DOCS);
    const docs = await head.weigh({ inputIds: DOCS, side: 'document' });
    const [q] = await head.weigh({ inputIds: [QUERY], side: 'query' });
    expect(q).toEqual({ 11: 2, 10: 1 });
    // idf(10) = ln(1 + (3 − 1 + 0.5)/(1 + 0.5)) = ln(8/3) = 0.980829; idf(11) = ln(1 + 1.5/2.5) = ln(1.6) = 0.470004
    // d1: K = 0.9·(1 − 0.4 + 0.4·3/2) = 1.08; 10: 0.980829·2/(2 + 1.08); 11: 2 × 0.470004·1/(1 + 1.08)  -> 1.088829
    // d2: K = 0.9·(1 − 0.4 + 0.4·2/2) = 0.9;  11: 2 × 0.470004·1/(1 + 0.9)                              -> 0.494741
    const hits = new InvertedIndex(['d1', 'd2', 'd3'], docs).search(q!, 10);
    expect(hits.map((h) => h.id)).toEqual(['d1', 'd2']);
    expect(hits[0]!.score).toBeCloseTo(Math.log(8 / 3) * 2 / 3.08 + 2 * Math.log(1.6) / 2.08, 12);
    expect(hits[0]!.score).toBeCloseTo(1.0888287, 6);
    expect(hits[1]!.score).toBeCloseTo(0.4947407, 6);
    expect(docs[2]).toEqual({ 13: Math.log(1 + 2.5 / 1.5) * 1 / (1 + 0.9 * (1 - 0.4 + 0.4 * 1 / 2)) }); // <unk> dropped
  });

  it('takes k1 and b, and refuses bad ones or weighing documents before fit', async () => {
    const head = new Bm25Head(SPECIAL, { k1: 1.2, b: 0.75 });
    head.fit(DOCS);
    const [d1] = await head.weigh({ inputIds: [DOCS[0]!], side: 'document' });
    expect(d1![10]).toBeCloseTo(Math.log(8 / 3) * 2 / (2 + 1.2 * (1 - 0.75 + 0.75 * 3 / 2)), 12);
    expect(() => new Bm25Head(SPECIAL, { b: 1.5 })).toThrow(/bm25 b must be a number in \[0, 1\]/);
    expect(() => new Bm25Head(SPECIAL, { k1: -1 })).toThrow(/bm25 k1 must be a finite number >= 0/);
    await expect(new Bm25Head(SPECIAL).weigh({ inputIds: DOCS, side: 'document' })).rejects.toThrow(/no corpus statistics: call fit/);
  });
});

describe('idf head', () => {
  it('scores the sum of idf over the distinct shared terms', async () => {
    const head = new IdfHead(SPECIAL);
    head.fit(DOCS);
    const docs = await head.weigh({ inputIds: DOCS, side: 'document' });
    const [q] = await head.weigh({ inputIds: [QUERY], side: 'query' });
    expect(q).toEqual({ 10: 1, 11: 1 });
    const hits = new InvertedIndex(['d1', 'd2', 'd3'], docs).search(q!, 10);
    expect(hits[0]!.score).toBeCloseTo(Math.log(8 / 3) + Math.log(1.6), 12); // d1: idf(10) + idf(11) = 1.450833
    expect(hits[1]!.score).toBeCloseTo(Math.log(1.6), 12); // d2: idf(11)
  });
});
