/**
 * The neural head variants against independent float64 host computations on the same hidden states:
 * m3-log1p = log1p(encode's lexical weights); splade = max over positions of
 * log1p(relu(E·LayerNorm(GELU(W_t·h + b_t)) + b_dec)), special ids dropped, top-k; its per-position
 * own-id weights; and the trainable m3 head = encode's weights.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { BgeM3 } from '../../src/m3.js';
import { hiddenStates } from '../../src/lab/hidden.js';
import { createHead, createTrainableHead } from '../../src/lab/heads/registry.js';
import { SpladeHead } from '../../src/lab/heads/splade.js';
import { rng } from '../../src/lab/train.js';
import type { LexicalWeights } from '../../src/scores.js';
import { checkpointDir } from '../helpers/fixtures.js';

const TEXTS = ['What is BGE M3?', 'BM25 is a bag-of-words retrieval function that ranks a set of documents.'];

function maxAbsDiff(a: LexicalWeights, b: LexicalWeights): number {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  return Math.max(0, ...Object.keys(a).map((k) => Math.abs(a[k]! - b[k]!)));
}

describe('head variants (sharp-m3)', () => {
  let m3: BgeM3;
  let enc: Awaited<ReturnType<BgeM3['encode']>>;
  beforeAll(async () => {
    m3 = await BgeM3.load(checkpointDir('sharp-m3'));
    enc = await m3.encode(TEXTS, { returnDense: false, returnSparse: true });
  });
  afterAll(() => m3.dispose());

  async function weighEach(name: string, opts = {}) {
    const head = createHead(name, m3, opts);
    const before = tf.memory().numTensors;
    const out: LexicalWeights[] = [];
    for (const ids of enc.inputIds) {
      const h = await hiddenStates(m3, [ids]);
      out.push(...(await head.weigh({ inputIds: [ids], hidden: h, side: 'document' })));
      h.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    head.dispose();
    return out;
  }

  it('m3-log1p is log1p of encode\'s lexical weights; the trainable m3 head equals them', async () => {
    const got = await weighEach('m3-log1p');
    let err = 0;
    got.forEach((w, i) => {
      const ref = Object.fromEntries(Object.entries(enc.lexicalWeights![i]!).map(([k, v]) => [k, Math.log1p(v)]));
      err = Math.max(err, maxAbsDiff(w, ref));
    });
    console.log(`m3-log1p vs log1p(encode): max abs err ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-5);
    const head = createTrainableHead('m3', m3);
    let err2 = 0;
    for (const [i, ids] of enc.inputIds.entries()) {
      const h = await hiddenStates(m3, [ids]);
      err2 = Math.max(err2, maxAbsDiff((await head.weigh({ inputIds: [ids], hidden: h, side: 'query' }))[0]!, enc.lexicalWeights![i]!));
      h.dispose();
    }
    head.dispose();
    console.log(`trainable m3 vs encode: max abs err ${err2.toExponential(2)}`);
    expect(err2).toBeLessThan(1e-5);
  });

  it('splade equals a float64 host computation (trained-looking weights), in chunks or not, with top-k', async () => {
    const H = m3.config.hidden_size;
    const V = m3.config.vocab_size;
    const rand = rng(5);
    const init = {
      dense_weight: tf.tensor2d(Float32Array.from({ length: H * H }, () => (rand() - 0.5) / Math.sqrt(H) * 2), [H, H]),
      dense_bias: tf.tensor1d(Float32Array.from({ length: H }, () => (rand() - 0.5) * 0.1)),
      ln_weight: tf.tensor1d(Float32Array.from({ length: H }, () => 1 + (rand() - 0.5) * 0.2)),
      ln_bias: tf.tensor1d(Float32Array.from({ length: H }, () => (rand() - 0.5) * 0.1)),
      decoder_bias: tf.tensor1d(Float32Array.from({ length: V }, () => (rand() - 0.5) * 0.02)),
    };
    const [W, bt, g, beta, bd] = await Promise.all(Object.values(init).map((t) => t.data()));
    const E = await m3.params.embeddings.word_embeddings.data();
    const ids = enc.inputIds[1]!;
    const hT = await hiddenStates(m3, [ids]);
    const h = await hT.data();
    // float64 reference
    const special = new Set([0, 1, 2, 3]);
    const ref = new Float64Array(V);
    const own: number[] = [];
    for (let t = 0; t < ids.length; t++) {
      const y = Array.from({ length: H }, (_, o) => { let s = bt![o]!; for (let i = 0; i < H; i++) s += W![o * H + i]! * h[t * H + i]!; return s; });
      const erf = (x: number) => { // Maclaurin series: cancellation leaves ~1e-10 accuracy for |x| <= 4
        const sgn = Math.sign(x); const a = Math.abs(x); let sum = 0, term = a, n = 0;
        if (a > 4) return sgn; // erf(4) = 1 − 1.5e-8
        while (Math.abs(term) > 1e-17) { sum += term / (2 * n + 1); n++; term *= -a * a / n; }
        return sgn * 2 / Math.sqrt(Math.PI) * sum;
      };
      const ge = y.map((x) => 0.5 * x * (1 + erf(x / Math.SQRT2)));
      const mu = ge.reduce((a, b) => a + b, 0) / H;
      const va = ge.reduce((a, b) => a + (b - mu) ** 2, 0) / H;
      const u = ge.map((x, i) => (x - mu) / Math.sqrt(va + m3.config.layer_norm_eps) * g![i]! + beta![i]!);
      for (let v = 0; v < V; v++) {
        let s = bd![v]!;
        for (let i = 0; i < H; i++) s += E[v * H + i]! * u[i]!;
        const w = Math.log1p(Math.max(0, s));
        if (w > ref[v]!) ref[v] = w;
        if (v === ids[t]) own.push(w);
      }
    }
    const refWeights: LexicalWeights = {};
    ref.forEach((w, v) => { if (w > 0 && !special.has(v)) refWeights[String(v)] = w; });
    for (const chunk of [undefined, 3]) {
      const head = new SpladeHead(m3, undefined, undefined, init, chunk);
      const before = tf.memory().numTensors;
      const [got] = await head.weigh({ inputIds: [ids], hidden: hT, side: 'document' });
      const tw = head.tokenWeights(hT, [ids]);
      const ownGot = Array.from(await tw.data());
      tw.dispose();
      expect(tf.memory().numTensors).toBe(before);
      const err = maxAbsDiff(got!, refWeights);
      const errOwn = Math.max(...own.map((w, t) => Math.abs(w - ownGot[t]!)));
      console.log(`splade (chunk ${chunk ?? 'default'}): ${Object.keys(got!).length} non-zero ids of ${V}; max abs err ${err.toExponential(2)}, own-id weights ${errOwn.toExponential(2)}`);
      expect(err).toBeLessThan(1e-4);
      expect(errOwn).toBeLessThan(1e-4);
      expect(Object.keys(got!).length).toBeGreaterThan(ids.length); // it expands beyond the text's own ids
      head.dispose();
    }
    const top = new SpladeHead(m3, undefined, 10, init);
    const [got10] = await top.weigh({ inputIds: [ids], hidden: hT, side: 'document' });
    const want10 = Object.entries(refWeights).sort((a, b) => b[1] - a[1]).slice(0, 10).map(([k]) => k).sort();
    expect(Object.keys(got10!).sort()).toEqual(want10);
    top.dispose();
    tf.dispose([hT, ...Object.values(init)]);
  });

  it('every head reads the layer it is given (hidden_states index)', async () => {
    const ids = enc.inputIds[0]!;
    for (const layer of [0, 1]) {
      const h = await hiddenStates(m3, [ids], layer);
      const head = createTrainableHead('m3', m3, { layer });
      expect(head.layer).toBe(layer);
      const tw = head.tokenWeights(h, [ids]);
      const w = await tw.data();
      const hd = await h.data();
      const [Wl, b] = [await m3.params.sparse_linear.weight.data(), (await m3.params.sparse_linear.bias.data())[0]!];
      const H = m3.config.hidden_size;
      const ref = ids.map((_, t) => { let s = b; for (let i = 0; i < H; i++) s += Wl[i]! * hd[t * H + i]!; return Math.max(0, s); });
      expect(Math.max(...ref.map((r, t) => Math.abs(r - w[t]!)))).toBeLessThan(1e-5);
      tf.dispose([tw, h]);
      head.dispose();
    }
    expect(() => createTrainableHead('bm25', m3)).toThrow(/cannot be trained; trainable heads: m3, m3-log1p, splade/);
    expect(() => new SpladeHead(m3, undefined, 0)).toThrow(/topK must be an integer >= 1/);
  });
});
