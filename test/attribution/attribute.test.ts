/**
 * `m3.attribute` as a user calls it: targets by piece, id and position; a repeated token explained at
 * its heaviest occurrence (a lexical weight is the max over occurrences); a long text; concurrent
 * calls; no tensors left behind (also after refused input); clear errors for bad input. And the rank
 * statistics the agreement figures use.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { BgeM3 } from '../../src/m3.js';
import { patchHeads } from '../../src/attribution/patching.js';
import { spearman, topKOverlap } from '../../src/attribution/rank.js';
import { checkpointDir } from '../helpers/fixtures.js';

const TEXT = 'BM25 is a bag-of-words retrieval function that ranks documents';
const PAIR: [string, string] = ['What is BGE M3?', 'BGE M3 is an embedding model supporting dense retrieval, lexical matching and multi-vector interaction.'];

describe('m3.attribute (sharp-m3)', () => {
  let m3: BgeM3;
  beforeAll(async () => { m3 = await BgeM3.load(checkpointDir('sharp-m3')); });
  afterAll(() => m3.dispose());

  it('explains the weight encode returns; piece, bare word, id and position name the same token', async () => {
    const enc = await m3.encode([TEXT], { returnSparse: true, returnDense: false });
    const id = m3.tokenizer.tokenToId('▁retrieval')!;
    const position = enc.inputIds[0]!.indexOf(id);
    const byPiece = await m3.attribute(TEXT, { target: '▁retrieval', steps: 4 });
    expect(byPiece.target).toEqual({ position, id, token: '▁retrieval' });
    expect(Math.abs(byPiece.value - enc.lexicalWeights![0]![String(id)]!)).toBeLessThanOrEqual(1e-5);
    for (const target of ['retrieval', id, { position }]) {
      const a = await m3.attribute(TEXT, { target, steps: 4 });
      expect(a.target).toEqual(byPiece.target);
      expect(a.sides[0]!.heads).toEqual(byPiece.sides[0]!.heads);
    }
    const s = byPiece.sides[0]!;
    const L = m3.config.num_hidden_layers;
    expect([s.heads.length, s.heads[0]!.length, s.mlp.length, s.residual.length]).toEqual([L, m3.config.num_attention_heads, L, L + 1]);
    expect(s.tokens[position]).toBe('▁retrieval');
  });

  it('a repeated token is explained at its heaviest occurrence, whose weight is its lexical weight', async () => {
    const text = 'retrieval of documents, dense retrieval and sparse retrieval for retrieval';
    const enc = await m3.encode([text], { returnSparse: true, returnDense: false });
    const id = m3.tokenizer.tokenToId('▁retrieval')!;
    const a = await m3.attribute(text, { target: 'retrieval', steps: 2 });
    expect(enc.inputIds[0]!.filter((x) => x === id).length).toBeGreaterThan(2);
    expect(Math.abs(a.value - enc.lexicalWeights![0]![String(id)]!)).toBeLessThanOrEqual(1e-5);
  });

  it('leaves no tensor behind: text, pair, corrupt baseline, patchHeads, refused input', async () => {
    await m3.attribute(TEXT, { target: 'retrieval', steps: 2 }); // warm-up (backend state)
    const before = tf.memory().numTensors;
    await m3.attribute(TEXT, { target: 'retrieval', steps: 5, stepsPerBatch: 2 });
    await m3.attribute(PAIR, { target: 'dense', steps: 3 });
    await m3.attribute(PAIR, { target: 'lexical', baseline: { corrupt: ['What is the M3?', PAIR[1]] }, steps: 3 });
    await patchHeads(m3, TEXT, { target: 'retrieval', baseline: { corrupt: TEXT.replace('BM', 'XY') } });
    await expect(m3.attribute(TEXT, { target: 'Paris' })).rejects.toThrow();
    await expect(m3.attribute(TEXT, { target: 'retrieval', baseline: { corrupt: 'short' } })).rejects.toThrow();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a long text (200+ tokens) and two concurrent calls give what sequential calls give', async () => {
    const long = Array.from({ length: 12 }, (_, i) => `Passage ${i}: BM25 ranks documents by term frequency and inverse document frequency.`).join(' ');
    const [a, b] = await Promise.all([
      m3.attribute(long, { target: 'document', steps: 2 }),
      m3.attribute(PAIR, { target: 'lexical', steps: 2 }),
    ]);
    expect(a.sides[0]!.inputIds.length).toBeGreaterThan(200);
    const a2 = await m3.attribute(long, { target: 'document', steps: 2 });
    const b2 = await m3.attribute(PAIR, { target: 'lexical', steps: 2 });
    expect(a.sides[0]!.heads).toEqual(a2.sides[0]!.heads);
    expect(b.sides[1]!.tokenAttributions).toEqual(b2.sides[1]!.tokenAttributions);
    expect(a.sides[0]!.residual[0]!.length).toBe(a.sides[0]!.inputIds.length);
  });

  it.each([
    ['an empty text', '', { target: 'x' }, /text "" has no tokens besides <s> and <\/s>/],
    ['a text that is not a string', 42, { target: 'x' }, /text must be a string, got number/],
    ['no target', TEXT, {}, /target is required/],
    ['an empty target', TEXT, { target: '' }, /target is an empty string/],
    ['a target outside the vocabulary', TEXT, { target: 'qqqzzz' }, /target "qqqzzz" is not a token of the vocabulary \(it tokenizes to .*\); give one of the text's token pieces: 0:<s> 1:▁B/],
    ['a target not in the text', TEXT, { target: '▁The' }, /target "▁The" \(id \d+, ▁The\) is not in the text; its tokens are 0:<s> 1:▁B/],
    ['a target not in a long text (its token list cut)', 'word '.repeat(300), { target: '▁The' }, /its tokens are 0:<s> 1:▁ 2:word .* 39:▁ … \(563 more\)$/],
    ['a target id outside the vocabulary', TEXT, { target: 10 ** 9 }, /target id 1000000000 is not a token id in \[0, 8002\)/],
    ['a position past the end', TEXT, { target: { position: 99 } }, /target position 99 is not a position of the text \(0 … 24/],
    ['a score target for one text', TEXT, { target: { score: 1 } }, /target must be a token piece, a token id or \{ position \}/],
    ['a token target for a pair', PAIR, { target: 'retrieval' }, /for a \[query, passage\] pair the target is 'dense' or 'lexical'/],
    ['a corrupt text of another length', TEXT, { target: 'retrieval', baseline: { corrupt: 'BM25' } }, /baseline.corrupt has 5 tokens and the text 25: a corrupt input must have as many tokens/],
    ['a single corrupt text for a pair', PAIR, { target: 'dense', baseline: { corrupt: 'x' } }, /baseline.corrupt must be a \[query, passage\] pair/],
    ['an unknown baseline', TEXT, { target: 'retrieval', baseline: 'mean' }, /baseline must be 'zero' or \{ corrupt \}, got "mean"/],
    ['zero steps', TEXT, { target: 'retrieval', steps: 0 }, /steps must be an integer in \[1, 4096\], got 0/],
    ['an empty passage', ['q', ''], { target: 'dense' }, /passage "" has no tokens besides/],
  ])('refuses %s with a clear error', async (_, text, opts, message) => {
    await expect(m3.attribute(text as string, opts as never)).rejects.toThrow(message);
  });

  it('refuses a disposed model', async () => {
    const other = await BgeM3.load(checkpointDir('tiny-m3'));
    other.dispose();
    await expect(other.attribute(TEXT, { target: 'retrieval' })).rejects.toThrow(/disposed/);
  });
});

describe('rank statistics', () => {
  it('Spearman: ties at their mean rank, perfect and reversed orders, hand-computed value', () => {
    expect(spearman([1, 2, 3, 4], [10, 20, 30, 40])).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 12);
    expect(spearman([1, 2, 3, 4], [1, 3, 2, 4])).toBeCloseTo(0.8, 12); // 1 − 6·2 / (4·15)
    // ranks [1.5, 1.5, 3, 4] and [1, 2, 3, 4]: Pearson 0.9486833
    expect(spearman([5, 5, 6, 7], [1, 2, 3, 4])).toBeCloseTo(3 / Math.sqrt(10), 10);
    expect(() => spearman([1], [1])).toThrow(/same length ≥ 2/);
  });

  it('top-k overlap compares the largest |values|', () => {
    expect(topKOverlap([0.1, -0.9, 0.5, 0], [-1, 0.8, 0.2, 0.6], 2)).toBe(1); // {1, 2} vs {0, 1}
  });
});
