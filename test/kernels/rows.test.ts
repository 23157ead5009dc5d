/**
 * The kernel's row operations (LayerNorm with an optional residual, softmax) against float64
 * references: odd row counts (so the split between threads is uneven), odd softmax lengths (the
 * lane-by-lane tail), masked (−inf) entries, large values; bad input; memory. Max errors are printed.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/backend.js';
import { LAYER_NORM_KERNEL, layerNormRows, softmaxRows } from '../../src/kernels/index.js';
import { heapStats } from '../../src/runtime/heap-guard.js';
import { ErrorLog } from '../helpers/reference.js';

function values(n: number, seed: number, scale = 1, offset = 0): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return offset + scale * ((s / 2 ** 31) - 1);
  });
}

beforeAll(async () => {
  await useBackend('wasm', { threads: 2 });
});

describe('row kernels against float64', () => {
  it('LayerNorm(x + residual): torch.nn.LayerNorm with biased variance', () => {
    const log = new ErrorLog('LayerNorm kernel');
    for (const [rows, cols, withRes, offset] of [[1, 4, false, 0], [3, 8, true, 0], [7, 36, true, 5], [33, 1024, true, 0], [5, 1024, false, 100]] as const) {
      const X = values(rows * cols, rows + cols, 2, offset);
      const R = withRes ? values(rows * cols, cols, 1) : null;
      const G = values(cols, 3, 1, 1);
      const B = values(cols, 4, 0.5);
      const eps = 1e-5;
      const y = tf.tidy(() => layerNormRows(tf.tensor2d(X, [rows, cols]), tf.tensor1d(G), tf.tensor1d(B), eps, R ? tf.tensor2d(R, [rows, cols]) : undefined)!.dataSync());
      let worst = 0;
      for (let r = 0; r < rows; r++) {
        const s = Array.from({ length: cols }, (_, j) => X[r * cols + j]! + (R ? R[r * cols + j]! : 0));
        const mean = s.reduce((a, v) => a + v, 0) / cols;
        const variance = s.reduce((a, v) => a + (v - mean) ** 2, 0) / cols;
        for (let j = 0; j < cols; j++) {
          const want = ((s[j]! - mean) / Math.sqrt(variance + eps)) * G[j]! + B[j]!;
          const err = Math.abs(y[r * cols + j]! - want);
          // float32 inputs of size |offset|: the centring loses up to ~|offset|·2^-24 / σ
          expect(err, `rows=${rows} cols=${cols} y[${r}, ${j}]`).toBeLessThanOrEqual(2e-6 * (1 + Math.abs(offset)) * Math.max(1, Math.abs(want)));
          worst = Math.max(worst, err);
        }
      }
      log.add(`${rows}x${cols}${withRes ? ' + residual' : ''}${offset ? ` (offset ${offset})` : ''}`, worst);
    }
    log.print();
  });

  it('softmax over rows of any length, with −inf (masked) entries', () => {
    const log = new ErrorLog('softmax kernel');
    for (const [rows, cols, scale] of [[1, 1, 1], [3, 3, 1], [5, 13, 4], [17, 128, 8], [2, 130, 30], [9, 517, 3]] as const) {
      const X = values(rows * cols, rows * cols, scale);
      for (let r = 0; r < rows; r++) if (cols > 2) X[r * cols + ((r * 7) % cols)] = -Infinity; // one masked key per row
      const y = tf.tidy(() => softmaxRows(tf.tensor2d(X, [rows, cols]))!.dataSync());
      let worst = 0;
      for (let r = 0; r < rows; r++) {
        const row = Array.from(X.subarray(r * cols, (r + 1) * cols));
        const m = Math.max(...row);
        const e = row.map((v) => Math.exp(v - m));
        const sum = e.reduce((a, v) => a + v, 0);
        e.forEach((v, j) => {
          const err = Math.abs(y[r * cols + j]! - v / sum);
          expect(err, `rows=${rows} cols=${cols} p[${r}, ${j}]`).toBeLessThanOrEqual(6e-7 * (v / sum) + 1e-9); // a few ulp
          worst = Math.max(worst, err);
          if (v === 0) expect(y[r * cols + j], `masked p[${r}, ${j}]`).toBe(0); // e^−∞ is exactly 0
        });
      }
      log.add(`${rows}x${cols}, scores ±${scale}`, worst);
    }
    log.print();
  });

  it('softmax: a NaN makes its row NaN (as Math.exp does), scores of ±100 and a gap of 200 stay exact', () => {
    const cols = 11; // two whole vectors and a 3-lane tail
    const X = new Float32Array(4 * cols).fill(0.5);
    X[3] = Number.NaN; // row 0, vector lane
    X[cols + 9] = Number.NaN; // row 1, tail lane
    X.fill(100, 2 * cols, 2 * cols + 5); // row 2: +100 ×5, −100 ×6: e^−200 underflows to 0
    X.fill(-100, 2 * cols + 5, 3 * cols);
    for (let j = 0; j < cols; j++) X[3 * cols + j] = -90 + j; // row 3: e^(x − max) down to e^−10
    const y = tf.tidy(() => softmaxRows(tf.tensor2d(X, [4, cols]))!.dataSync());
    for (let j = 0; j < cols; j++) {
      expect(y[j], `row 0 p[${j}]`).toBeNaN();
      expect(y[cols + j], `row 1 p[${j}]`).toBeNaN();
      expect(y[2 * cols + j], `row 2 p[${j}]`).toBe(j < 5 ? Math.fround(0.2) : 0);
    }
    const e = Array.from({ length: cols }, (_, j) => Math.exp(j - (cols - 1)));
    const sum = e.reduce((a, v) => a + v, 0);
    e.forEach((v, j) => expect(Math.abs(y[3 * cols + j]! - v / sum), `row 3 p[${j}]`).toBeLessThanOrEqual(6e-7 * (v / sum) + 1e-9));
  });
});

describe('row kernels: bad input and memory', () => {
  it('names the tensor at fault', () => {
    const run = (inputs: tf.NamedTensorMap) => tf.engine().runKernel(LAYER_NORM_KERNEL, inputs, { eps: 1e-5 });
    const x = tf.zeros([2, 8]);
    expect(() => run({ x, gamma: tf.zeros([4]), beta: tf.zeros([8]) })).toThrow(/gamma must be \[8\]/);
    expect(() => run({ x, residual: tf.zeros([3, 8]), gamma: tf.zeros([8]), beta: tf.zeros([8]) })).toThrow(/residual must be \[2, 8\]/);
    expect(() => run({ x: tf.zeros([2, 6]), gamma: tf.zeros([6]), beta: tf.zeros([6]) })).toThrow(/multiple of 4/);
    expect(layerNormRows(tf.zeros([2, 6]) as tf.Tensor2D, tf.zeros([6]) as tf.Tensor1D, tf.zeros([6]) as tf.Tensor1D, 1e-5)).toBeNull(); // callers fall back
  });

  it('tf.memory() and the wasm heap stay flat across repeated calls', () => {
    const x = tf.tensor2d(values(64 * 256, 1), [64, 256]);
    const g = tf.ones([256]) as tf.Tensor1D;
    const b = tf.zeros([256]) as tf.Tensor1D;
    const call = () => tf.tidy(() => { layerNormRows(x, g, b, 1e-5, x); softmaxRows(x); });
    for (let i = 0; i < 3; i++) call();
    const before = tf.memory().numTensors;
    const heap = heapStats()?.heapBytes;
    for (let i = 0; i < 50; i++) call();
    expect(tf.memory().numTensors).toBe(before);
    expect(heapStats()?.heapBytes).toBe(heap);
    tf.dispose([x, g, b]);
  });
});
