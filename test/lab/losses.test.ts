/** The training losses against float64 computations written out by hand. */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/backend.js';
import { distillation, flops, infoNce, meanNonZeros, scoreMatrix } from '../../src/lab/losses.js';

const Q = [[0.5, 0, 1.2], [0, 0.3, 0.4]];
const D = [[0.4, 0, 0.9], [0.1, 0.8, 0], [0, 0, 0.2]];

function logSoftmax(row: number[]): number[] {
  const m = Math.max(...row);
  const lse = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
  return row.map((x) => x - lse);
}

describe('losses', () => {
  beforeAll(async () => { await useBackend('wasm'); });
  it('InfoNCE, FLOPS and distillation equal their definitions', () => {
    const S = Q.map((q) => D.map((d) => q.reduce((s, x, j) => s + x * d[j]!, 0))); // [2, 3]
    const tau = 0.2;
    const nce = -(logSoftmax(S[0]!.map((x) => x / tau))[0]! + logSoftmax(S[1]!.map((x) => x / tau))[1]!) / 2;
    const fl = [0, 1, 2].reduce((s, j) => s + ((Q[0]![j]! + Q[1]![j]!) / 2) ** 2, 0);
    const T = [[2, 0.5, -1], [0, 1, 3]];
    const kl = T.map((t, i) => {
      const lt = logSoftmax(t.map((x) => x / tau));
      const ls = logSoftmax(S[i]!.map((x) => x / tau));
      return lt.reduce((s, l, j) => s + Math.exp(l) * (l - ls[j]!), 0);
    }).reduce((a, b) => a + b) / 2;
    const before = tf.memory().numTensors;
    const got = tf.tidy(() => {
      const s = scoreMatrix(tf.tensor2d(Q), tf.tensor2d(D));
      return [infoNce(s, [0, 1], tau), flops(tf.tensor2d(Q)), distillation(s, tf.tensor2d(T), tau)].map((x) => x.dataSync()[0]!);
    });
    expect(tf.memory().numTensors).toBe(before);
    const err = Math.max(Math.abs(got[0]! - nce) / nce, Math.abs(got[1]! - fl) / fl, Math.abs(got[2]! - kl) / kl);
    console.log(`InfoNCE ${got[0]} (ref ${nce}), FLOPS ${got[1]} (ref ${fl}), KL ${got[2]} (ref ${kl}); max rel err ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-5);
    tf.tidy(() => {
      expect(meanNonZeros(tf.tensor2d(Q))).toBe(2);
      // KL of a distribution with itself is 0; errors name what is wrong.
      expect(Math.abs(distillation(tf.tensor2d(T), tf.tensor2d(T), 1).dataSync()[0]!)).toBeLessThan(1e-6);
      expect(() => infoNce(tf.tensor2d(S), [0, 3], 1)).toThrow(/positive 3 of query 1 is not a column in \[0, 3\)/);
      expect(() => infoNce(tf.tensor2d(S), [0, 1], 0)).toThrow(/temperature must be > 0/);
      expect(() => distillation(tf.tensor2d(S), tf.tensor2d([[1, 2]]), 1)).toThrow(/differ in shape/);
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});
