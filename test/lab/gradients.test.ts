/**
 * Gradient check for every trainable head: tf.variableGrads of the full training loss (InfoNCE with
 * in-batch and hard negatives + FLOPS on both sides + distillation) against central differences.
 *
 * Tolerance: the loss is a float32 sum of O(1) terms, so one evaluation carries a rounding error of
 * about 1e-6 relative; a central difference with step ε divides the difference of two such values
 * by 2ε, giving an error of ~1e-6·|L|/ε (= 1e-3·|L| at ε = 1e-3), while its truncation error
 * O(ε²·L''') is far smaller. The check therefore asks for a relative agreement of 2e-2 on
 * directional derivatives along random unit directions, with an absolute floor of
 * max(2e-3, 3e-6·|L|/ε), three times that rounding band. splade's scores and FLOPS sum over all
 * V columns, which widens the band by ~√V, so it uses ε = 1e-2. A wrong gradient (a missing term, a sign, a dropped chain factor) misses by
 * far more: the test also shows that the check fails for a gradient scaled by 0.9.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { ensureGradients } from '../../src/lab/gradients.js';
import { BgeM3 } from '../../src/m3.js';
import { createTrainableHead, TRAINABLE_HEAD_NAMES } from '../../src/lab/heads/registry.js';
import { memoryHiddenSource, padHidden } from '../../src/lab/hidden-source.js';
import { distillation, flops, infoNce, scoreMatrix } from '../../src/lab/losses.js';
import { rng } from '../../src/lab/train.js';
import { checkpointDir } from '../helpers/fixtures.js';

const QUERIES = ['What is BGE M3?', 'Defination of BM25'];
const DOCS = [
  'BGE M3 is an embedding model supporting dense retrieval, lexical matching and multi-vector interaction.',
  'BM25 is a bag-of-words retrieval function that ranks a set of documents.',
  'Moscow is the capital of Russia.',
];

describe('gradient check (sharp-m3)', () => {
  let m3: BgeM3;
  beforeAll(async () => {
    await ensureGradients();
    m3 = await BgeM3.load(checkpointDir('sharp-m3'));
  });
  afterAll(() => m3.dispose());

  for (const name of TRAINABLE_HEAD_NAMES) {
    it(`${name}: tf gradients equal central differences of the loss`, async () => {
      const texts = new Map<string, number[]>();
      [...QUERIES, ...DOCS].forEach((t, i) => texts.set(String(i), m3.tokenize([t])[0]!));
      const src = await memoryHiddenSource(m3, texts);
      const q = padHidden(await Promise.all(['0', '1'].map((i) => src.get(i))), src.hiddenSize);
      const d = padHidden(await Promise.all(['2', '3', '4'].map((i) => src.get(i))), src.hiddenSize);
      const head = createTrainableHead(name, m3);
      // Move off the starting point so every term and variable is exercised.
      const rand = rng(7);
      for (const v of head.trainable) tf.tidy(() => v.assign(tf.add(v, tf.mul(tf.tensor(Float32Array.from({ length: v.size }, () => rand() - 0.5), v.shape), 0.05))));
      const columns = head.columns([...q.inputIds, ...d.inputIds]);
      const teacher = tf.tensor2d([[0.9, 0.1, 0.3], [0.2, 0.8, 0.1]]);
      const loss = () => tf.tidy(() => {
        const qr = head.represent(q.hidden, q.inputIds, columns);
        const dr = head.represent(d.hidden, d.inputIds, columns);
        const s = scoreMatrix(qr, dr);
        // FLOPS sums over every column: over splade's whole vocabulary it is large, so its weight is smaller.
        const fw = head.space === 'vocab' ? 0.002 : 0.3;
        return tf.addN([infoNce(s, [0, 1], 0.5), tf.mul(flops(qr), fw), tf.mul(flops(dr), fw / 3), tf.mul(distillation(s, teacher, 0.5), 0.5)]) as tf.Scalar;
      });
      const { value, grads } = tf.variableGrads(loss, head.trainable as tf.Variable[]);
      const L = (await value.data())[0]!;
      // splade's scores and FLOPS sum over all V = 8002 columns: float32 rounding grows with them, so a larger step.
      const eps = head.space === 'vocab' ? 1e-2 : 1e-3;
      let worst = 0;
      let worstScaled = Infinity;
      for (let trial = 0; trial < 3; trial++) {
        const dir = head.trainable.map((v) => tf.tensor(Float32Array.from({ length: v.size }, () => (rand() < 0.5 ? -1 : 1) / Math.sqrt(v.size)), v.shape));
        const analytic = tf.tidy(() => tf.addN(head.trainable.map((v, i) => tf.sum(tf.mul(grads[v.name]!, dir[i]!)))).dataSync()[0]!);
        const shift = (sign: number) => head.trainable.forEach((v, i) => tf.tidy(() => v.assign(tf.add(v, tf.mul(dir[i]!, sign * eps)))));
        shift(1); const lp = loss().dataSync()[0]!;
        shift(-2); const lm = loss().dataSync()[0]!;
        shift(1);
        tf.dispose(dir);
        const numeric = (lp - lm) / (2 * eps);
        const err = Math.abs(analytic - numeric) / Math.max(Math.abs(numeric), 0.1);
        const errScaled = Math.abs(0.9 * analytic - numeric) / Math.max(Math.abs(numeric), 0.1);
        worst = Math.max(worst, err);
        worstScaled = Math.min(worstScaled, errScaled);
        console.log(`${name}: loss ${L.toFixed(5)}, directional derivative tf ${analytic.toExponential(6)} vs central difference ${numeric.toExponential(6)}, rel err ${err.toExponential(2)}`);
        expect(Math.abs(analytic - numeric)).toBeLessThanOrEqual(Math.max(2e-2 * Math.abs(numeric), 2e-3, 3e-6 * Math.abs(L) / eps));
      }
      console.log(`${name}: max rel err ${worst.toExponential(2)}; a gradient scaled by 0.9 would miss by >= ${worstScaled.toExponential(2)}`);
      expect(worstScaled).toBeGreaterThan(2e-2);
      tf.dispose([value, ...Object.values(grads), teacher, q.hidden, d.hidden]);
      head.dispose();
    });
  }
});
