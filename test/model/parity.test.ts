/**
 * End-to-end parity with the float64 reference: every stored activation of every case, the three
 * head outputs, lexical weights and every score matrix, for each fixture checkpoint.
 * Expectations are read from test/fixtures/expected (no pasted numbers); max errors are printed.
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import type { ActivationName } from '../../src/hooks/names.js';
import { CHECKPOINTS } from '../helpers/fixtures.js';
import { ErrorLog, loadCases, maxAbsDiff, sparseMaxAbsDiff, useModelAndReference } from '../helpers/reference.js';

const TOL = { hidden: 1e-4, probs: 1e-5, heads: 1e-4, scores: 1e-4 };
const cases = loadCases();
const LONG = new Set(['long_3k']);

/** Real-position slice of a padded cached activation for batch row b: drop padding rows/columns. */
function realPart(t: tf.Tensor, b: number, L: number, name: string): Float32Array {
  return tf.tidy(() => {
    let x = tf.squeeze(tf.slice(t, [b], [1]), [0]); // drop the batch axis
    const s = x.shape;
    if (/hook_(scores|probs)$/.test(name)) x = tf.slice(x, [0, 0, 0], [s[0]!, L, L]); // [heads, L, L]
    else if (/hook_[qkv]$/.test(name)) x = tf.slice(x, [0, 0, 0], [s[0]!, L, s[2]!]); // [heads, L, d]
    else if (name === 'dense_head.hook_out') { /* [H] */ }
    else if (name.startsWith('colbert_')) x = tf.slice(x, [0, 0], [L - 1, s[1]!]); // [L−1, C]
    else if (name === 'sparse_linear.hook_out') x = tf.reshape(tf.slice(x, [0, 0], [L, 1]), [L]); // fixtures drop the size-1 axis
    else if (name === 'sparse_head.hook_out') x = tf.slice(x, [0], [L]);
    else x = tf.slice(x, [0, 0], [L, s[1]!]); // [L, H] or [L, I]
    return x.dataSync() as Float32Array;
  });
}

describe.each(CHECKPOINTS)('%s parity with the float64 reference', (ckpt) => {
  const fx = useModelAndReference(ckpt);

  it('every stored activation of every case, in padded batches', async () => {
    const log = new ErrorLog(`${ckpt} activations (padded batches of 8)`);
    const short = cases.filter((c) => !LONG.has(c.id));
    for (let i = 0; i < short.length; i += 8) {
      const group = short.slice(i, i + 8);
      const names = new Set<string>();
      for (const c of group) for (const n of fx.ref.names(c.id)) names.add(n);
      const { cache } = await fx.m3.runWithCache({ inputIds: group.map((c) => c.input_ids) }, {
        names: [...names] as ActivationName[],
      });
      for (const [b, c] of group.entries()) {
        for (const name of fx.ref.names(c.id)) {
          const want = await fx.ref.tensor(c.id, name);
          const got = realPart(cache.get(name as ActivationName), b, c.input_ids.length, name);
          const label = name.replace(/layer\.\d+\./, 'layer.{i}.');
          const err = log.add(label, maxAbsDiff(got, want.data));
          const tol = name.endsWith('hook_probs') ? TOL.probs : TOL.hidden;
          expect(err, `${c.id}/${name}`).toBeLessThanOrEqual(tol);
        }
      }
      cache.dispose();
    }
    log.print();
  });

  it('encode(): dense, lexical weights and ColBERT vectors of every case, long_3k included', async () => {
    const log = new ErrorLog(`${ckpt} encode() outputs`);
    const out = await fx.m3.encode({ inputIds: cases.map((c) => c.input_ids) }, {
      returnDense: true, returnSparse: true, returnColbert: true, batchSize: 8,
    });
    for (const [i, c] of cases.entries()) {
      const dense = await fx.ref.tensor(c.id, 'dense_head.hook_out');
      expect(log.add('dense', maxAbsDiff(out.denseVecs![i]!, dense.data)), c.id).toBeLessThanOrEqual(TOL.heads);
      let dot = 0;
      for (let j = 0; j < dense.data.length; j++) dot += dense.data[j]! * out.denseVecs![i]![j]!;
      expect(log.add('1 - dense cosine', 1 - dot), c.id).toBeLessThanOrEqual(1e-5);
      const lw = fx.ref.json.cases[c.id]!.lexical_weights;
      expect(log.add('lexical_weights (missing = 0)', sparseMaxAbsDiff(out.lexicalWeights![i]!, lw)), c.id).toBeLessThanOrEqual(TOL.heads);
      const colbert = await fx.ref.tensor(c.id, 'colbert_head.hook_out');
      expect(out.colbertVecs![i]!.rows).toBe(c.input_ids.length - 1);
      expect(log.add('colbert', maxAbsDiff(out.colbertVecs![i]!.data, colbert.data)), c.id).toBeLessThanOrEqual(TOL.heads);
    }
    log.print();
  });

  it('every score matrix of reference.json', async () => {
    const s = fx.ref.json.scores;
    const byId = new Map(cases.map((c) => [c.id, c]));
    const enc = (ids: string[]) => fx.m3.encode({ inputIds: ids.map((id) => byId.get(id)!.input_ids) }, {
      returnDense: true, returnSparse: true, returnColbert: true,
    });
    const q = await enc(s.queries);
    const p = await enc(s.passages);
    const log = new ErrorLog(`${ckpt} scores`);
    const check = (label: string, want: number[][], f: (i: number, j: number) => number): void => {
      want.forEach((row, i) => row.forEach((w, j) => {
        expect(log.add(label, Math.abs(f(i, j) - w)), `${label}[${i}][${j}]`).toBeLessThanOrEqual(TOL.scores);
      }));
    };
    const dense = (i: number, j: number) => fx.m3.denseScore(q.denseVecs![i]!, p.denseVecs![j]!);
    const sparse = (i: number, j: number) => fx.m3.computeLexicalMatchingScore(q.lexicalWeights![i]!, p.lexicalWeights![j]!);
    const colbert = (i: number, j: number) => fx.m3.colbertScore(q.colbertVecs![i]!, p.colbertVecs![j]!);
    check('dense', s.dense, dense);
    check('sparse', s.sparse, sparse);
    check('colbert', s.colbert, colbert);
    for (const w of s.weighted) {
      check(`sparse+dense ${w.weights}`, w['sparse+dense'], (i, j) => (w.weights[0] * dense(i, j) + w.weights[1] * sparse(i, j)) / (w.weights[0] + w.weights[1]));
    }
    // computeScore on the pairs (query i, passage j) with texts: needs the tokenizer to agree too.
    const pairs: Array<[string, string]> = [];
    s.queries.forEach((qi) => s.passages.forEach((pj) => pairs.push([byId.get(qi)!.text, byId.get(pj)!.text])));
    for (const w of s.weighted) {
      const got = await fx.m3.computeScore(pairs, { weightsForDifferentModes: w.weights, maxQueryLength: 8192 });
      const flat = (m: number[][]) => m.flat();
      for (const [key, want] of [['dense', s.dense], ['sparse', s.sparse], ['colbert', s.colbert],
        ['sparse+dense', w['sparse+dense']], ['colbert+sparse+dense', w['colbert+sparse+dense']]] as const) {
        const e = log.add(`computeScore ${key} ${w.weights}`, maxAbsDiff(got[key], flat(want)));
        expect(e, `computeScore ${key}`).toBeLessThanOrEqual(TOL.scores);
      }
    }
    log.print();
  });

  it('a text gives the same outputs alone and in any batch', async () => {
    const texts = cases.filter((c) => !LONG.has(c.id)).slice(0, 12).map((c) => c.input_ids);
    const all = { returnDense: true, returnSparse: true, returnColbert: true };
    const batched = await fx.m3.encode({ inputIds: texts }, { ...all, batchSize: 12 });
    let worst = 0;
    for (const [i, ids] of texts.entries()) {
      const alone = await fx.m3.encode({ inputIds: [ids] }, all);
      worst = Math.max(worst, maxAbsDiff(alone.denseVecs![0]!, batched.denseVecs![i]!),
        maxAbsDiff(alone.colbertVecs![0]!.data, batched.colbertVecs![i]!.data),
        sparseMaxAbsDiff(alone.lexicalWeights![0]!, batched.lexicalWeights![i]!));
    }
    console.log(`${ckpt}: alone vs batched, max abs diff ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(1e-5);
  });

  it('encode() leaves no tensor behind', async () => {
    const ids = { inputIds: cases.slice(0, 6).map((c) => c.input_ids) };
    const all = { returnDense: true, returnSparse: true, returnColbert: true };
    await fx.m3.encode(ids, all); // warm-up (backend kernels may allocate once)
    const before = tf.memory().numTensors;
    for (let r = 0; r < 5; r++) await fx.m3.encode(ids, all);
    expect(tf.memory().numTensors).toBe(before);
  });
});
