/**
 * The attention job of the FMA kernel (src/kernels/attention.ts, gemm.wat `$attention`) against a
 * float64 reference: several batch rows with padded keys (−inf bias), head widths that are not a
 * multiple of the 8-column panel, sequences long enough to be split into several blocks of query
 * rows, one thread and two; the scale applied in the GEMM's store; bad input; memory. Max errors printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/backend.js';
import { ATTENTION_KERNEL, attentionRows, kernelAttention, kernelStatus, setKernelEnabled } from '../../src/kernels/index.js';
import { mulberry32 } from '../../src/rng.js';
import { ErrorLog } from '../helpers/reference.js';

/** softmax(scale·q_h k_hᵀ + bias[b])·v_h per row b and head h, in float64: out [B·T, H]. */
function reference(q: Float32Array, k: Float32Array, v: Float32Array, bias: Float32Array | null, B: number, T: number, heads: number, scale: number): Float64Array {
  const H = q.length / (B * T);
  const d = H / heads;
  const out = new Float64Array(B * T * H);
  const s = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < T; i++) {
        let max = -Infinity;
        for (let j = 0; j < T; j++) {
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[(b * T + i) * H + h * d + c]! * k[(b * T + j) * H + h * d + c]!;
          s[j] = scale * dot + (bias ? bias[b * T + j]! : 0);
          max = Math.max(max, s[j]!);
        }
        let sum = 0;
        for (let j = 0; j < T; j++) sum += (s[j] = Math.exp(s[j]! - max));
        for (let c = 0; c < d; c++) {
          let acc = 0;
          for (let j = 0; j < T; j++) acc += s[j]! * v[(b * T + j) * H + h * d + c]!;
          out[(b * T + i) * H + h * d + c] = acc / sum;
        }
      }
    }
  }
  return out;
}

function uniform(n: number, seed: number, amp: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (2 * r() - 1) * amp);
}

beforeAll(async () => {
  await useBackend('wasm', { threads: 2 });
});
afterAll(() => setKernelEnabled(true));

describe('attention kernel against a float64 reference', () => {
  it('runs here', () => {
    expect(kernelStatus().active, kernelStatus().path).toBe(true);
  });

  // B, T, heads, d, padded keys at the end of each row (row b gets b·pad of them)
  const CASES: Array<[number, number, number, number, number]> = [
    [1, 1, 1, 4, 0], [1, 3, 2, 3, 0], [1, 9, 1, 4, 0], [2, 7, 3, 12, 2], [3, 33, 4, 16, 5], [1, 128, 16, 64, 0], [2, 300, 2, 20, 40], [1, 700, 2, 12, 0],
  ];

  it('every case, with padding, several query blocks, odd head widths', () => {
    const log = new ErrorLog('attention kernel vs float64');
    for (const [B, T, heads, d, pad] of CASES) {
      const H = heads * d;
      const scale = 1 / Math.sqrt(d);
      const q = uniform(B * T * H, B + T + d, 2);
      const k = uniform(B * T * H, 3 * T + d, 2);
      const v = uniform(B * T * H, 7 * T + heads, 1);
      const bias = new Float32Array(B * T);
      for (let b = 0; b < B; b++) for (let j = Math.max(1, T - b * pad); j < T; j++) bias[j + b * T] = -Infinity;
      const want = reference(q, k, v, pad ? bias : null, B, T, heads, scale);
      const got = tf.tidy(() => {
        const out = kernelAttention(tf.tensor2d(q, [B * T, H]), tf.tensor2d(k, [B * T, H]), tf.tensor2d(v, [B * T, H]),
          pad ? tf.tensor4d(bias, [B, 1, 1, T]) : null, B, heads, scale);
        expect(out).not.toBeNull();
        expect(out!.shape).toEqual([B * T, H]);
        return out!.dataSync() as Float32Array;
      });
      let worst = 0;
      for (let i = 0; i < want.length; i++) {
        const err = Math.abs(got[i]! - want[i]!);
        if (!(err <= 2e-6)) throw new Error(`B=${B} T=${T} heads=${heads} d=${d} pad=${pad}: out[${i}] = ${got[i]}, want ${want[i]} (error ${err})`);
        worst = Math.max(worst, err);
      }
      log.add(`B=${B} T=${T} heads=${heads} d=${d}${pad ? ` pad ${pad}/row` : ''} (${Math.ceil(T / attentionRows(T))} block(s))`, worst);
    }
    log.print();
  });

  it('one thread and two give the same bits', async () => {
    const [B, T, heads, d] = [2, 70, 4, 8];
    const H = heads * d;
    const q = uniform(B * T * H, 1, 1);
    const k = uniform(B * T * H, 2, 1);
    const v = uniform(B * T * H, 3, 1);
    const run = () => tf.tidy(() => kernelAttention(tf.tensor2d(q, [B * T, H]), tf.tensor2d(k, [B * T, H]), tf.tensor2d(v, [B * T, H]), null, B, heads, 0.3)!.dataSync() as Float32Array);
    const two = run();
    await useBackend('wasm', { threads: 1 });
    try {
      // the single-threaded build has no shared memory, so no kernel: the test is about the pool, so
      // only compare when the kernel still runs with one thread
      if (kernelStatus().active) expect(run()).toEqual(two);
    } finally {
      await useBackend('wasm', { threads: 2 });
    }
    expect(run()).toEqual(two); // and again on two threads: work-item order does not change results
  });

  it('refuses bad input, naming it', () => {
    const q = tf.zeros([6, 8]);
    const run = (inputs: tf.NamedTensorMap, attrs: Record<string, number>) => () => tf.engine().runKernel(ATTENTION_KERNEL, inputs, attrs);
    expect(run({ q, k: tf.zeros([6, 4]), v: q }, { batch: 1, heads: 2, scale: 1 })).toThrow(/k must be \[6, 8\]/);
    expect(run({ q, k: q, v: q }, { batch: 4, heads: 2, scale: 1 })).toThrow(/batch 4 does not divide the 6 rows/);
    expect(run({ q, k: q, v: q }, { batch: 1, heads: 3, scale: 1 })).toThrow(/3 heads do not divide the hidden size 8/);
    expect(run({ q, k: q, v: q, keyBias: tf.zeros([5]) }, { batch: 1, heads: 2, scale: 1 })).toThrow(/keyBias must hold B·T = 6 values/);
    expect(run({ q, k: q, v: q }, { batch: 1, heads: 2, scale: Number.NaN })).toThrow(/scale must be a finite/);
    setKernelEnabled(false);
    expect(kernelAttention(q as tf.Tensor2D, q as tf.Tensor2D, q as tf.Tensor2D, null, 1, 2, 1)).toBeNull();
    setKernelEnabled(true);
    tf.dispose(q);
  });

  it('leaves no tensors behind', () => {
    const q = tf.randomUniform([64, 32]) as tf.Tensor2D;
    kernelAttention(q, q, q, null, 2, 4, 0.5)!.dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) kernelAttention(q, q, q, null, 2, 4, 0.5)!.dispose();
    expect(tf.memory().numTensors).toBe(before);
    q.dispose();
  });
});
