/**
 * What a tfjs user expects of the tensors this package hands out, tried as a user would: importing
 * `@tensorflow/tfjs-core` themselves, writing hooks with the chained API (`act.mul(m)`, `act.sum()`),
 * and training on top of the encoder output with `tf.grad` and `tf.train.adam`, on wasm and cpu.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { BgeM3, useBackend, type ActivationName } from '../src/index.js';
import { checkpointDir } from './helpers/fixtures.js';
import { loadCases, maxAbsDiff } from './helpers/reference.js';

const cases = new Map(loadCases().map((c) => [c.id, c]));
const batch = { inputIds: ['readme_q1', 'zh_bge'].map((id) => cases.get(id)!.input_ids) };

describe('chained tensor methods in hooks (sharp-m3)', () => {
  let m3: BgeM3;
  beforeAll(async () => { m3 = await BgeM3.load(checkpointDir('sharp-m3')); });
  afterAll(() => m3.dispose());

  it('a hook written with act.mul(mask) edits the outputs exactly as tf.mul(act, mask) does', async () => {
    const heads = m3.config.num_attention_heads;
    const site: ActivationName = 'encoder.layer.0.attention.self.hook_probs';
    const mask = tf.tensor4d([...Array(heads)].map((_, h) => (h === 2 ? 0 : 1)), [1, heads, 1, 1]);
    const chained = await m3.runWithHooks(batch, { [site]: (act) => act.mul(mask) });
    const functional = await m3.runWithHooks(batch, { [site]: (act) => tf.mul(act, mask) });
    const untouched = await m3.runWithHooks(batch, {});
    mask.dispose();
    let same = 0;
    let moved = 0;
    chained.denseVecs!.forEach((v, i) => {
      same = Math.max(same, maxAbsDiff(v, functional.denseVecs![i]!));
      moved = Math.max(moved, maxAbsDiff(v, untouched.denseVecs![i]!));
    });
    console.log(`chained vs functional hook: max abs diff ${same.toExponential(2)}; the edit moved dense by ${moved.toExponential(2)}`);
    expect(same).toBe(0);
    expect(moved).toBeGreaterThan(1e-3);
  });

  it('a reading hook can call act.sum(), act.max() and act.arraySync()', async () => {
    const seen: number[] = [];
    const { cache } = await m3.runWithCache(batch, { names: ['sparse_head.hook_out'] });
    await m3.runWithHooks(batch, {
      'sparse_head.hook_out': (act) => { seen.push(act.sum().arraySync() as number, act.max().arraySync() as number); },
    });
    const w = cache.get('sparse_head.hook_out').dataSync();
    cache.dispose();
    expect(seen[0]).toBeCloseTo(Array.from(w).reduce((a, b) => a + b, 0), 4);
    expect(seen[1]).toBe(Math.max(...w));
  });
});

describe.each(['wasm', 'cpu'] as const)('gradients on the %s backend', (backend) => {
  // The encoder output of one text and sparse_linear's weights, as host arrays (independent of any backend).
  let h: Float32Array;
  let w: Float32Array;
  let bias: number;
  let target: Float32Array;
  let T: number;
  let H: number;
  beforeAll(async () => {
    const m3 = await BgeM3.load(checkpointDir('sharp-m3'));
    const last: ActivationName = `encoder.layer.${m3.config.num_hidden_layers - 1}.hook_out`;
    const { cache } = await m3.runWithCache({ inputIds: [cases.get('readme_q1')!.input_ids] }, { names: [last, 'sparse_head.hook_out'] });
    [, T, H] = cache.get(last).shape as [number, number, number];
    h = cache.get(last).dataSync() as Float32Array;
    target = cache.get('sparse_head.hook_out').dataSync() as Float32Array;
    w = m3.params.sparse_linear.weight.dataSync() as Float32Array;
    bias = m3.params.sparse_linear.bias.dataSync()[0]!;
    cache.dispose();
    m3.dispose();
    await useBackend(backend);
  });
  afterAll(async () => { await useBackend('wasm'); });

  it('tf.grad of the sparse head\'s summed token weights is Σ h_t over tokens with h_t·w + b > 0', () => {
    const before = tf.memory().numTensors;
    const hT = tf.tensor2d(h, [T, H]);
    const wT = tf.tensor2d(w, [1, H]);
    const g = tf.grad((v: tf.Tensor) => hT.matMul(v, false, true).add(bias).relu().sum())(wT);
    // The same gradient on the host: relu'(s_t) = 1 where s_t > 0.
    const want = new Float64Array(H);
    for (let t = 0; t < T; t++) {
      let s = bias;
      for (let j = 0; j < H; j++) s += h[t * H + j]! * w[j]!;
      if (s > 0) for (let j = 0; j < H; j++) want[j] = want[j]! + h[t * H + j]!;
    }
    const err = maxAbsDiff(g.dataSync(), want);
    console.log(`${backend}: tf.grad vs host gradient, max abs diff ${err.toExponential(2)}`);
    expect(tf.getBackend()).toBe(backend);
    expect(g.shape).toEqual([1, H]);
    expect(err).toBeLessThanOrEqual(1e-5);
    tf.dispose([hT, wT, g]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('tf.train.adam fits a fresh sparse head to the model\'s token weights', () => {
    const before = tf.memory().numTensors;
    const hT = tf.tensor2d(h, [T, H]);
    const y = tf.tensor2d(target, [T, 1]);
    const [v, b] = tf.tidy(() => [tf.variable(tf.zeros([H, 1])), tf.variable(tf.zeros([1]))]);
    const opt = tf.train.adam(0.05);
    const loss = () => hT.matMul(v).add(b).sub(y).square().mean() as tf.Scalar;
    const first = tf.tidy(() => loss().arraySync() as number);
    for (let step = 0; step < 60; step++) opt.minimize(loss, true)?.dispose();
    const last = tf.tidy(() => loss().arraySync() as number);
    console.log(`${backend}: adam, mean squared error ${first.toExponential(2)} -> ${last.toExponential(2)}`);
    expect(last).toBeLessThan(first / 10);
    opt.dispose();
    tf.dispose([hT, y, v, b]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
