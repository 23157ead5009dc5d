/**
 * The fast forward (src/model/fast/: per-head 2-D matMuls, short rows grouped under a block mask, query
 * rows in blocks, projections and feed-forward in token chunks) against the textbook forward
 * (`forward: 'reference'`, src/model/: batched attention), on the three fixture checkpoints with padded
 * batches: every layer's attention output and layer output and the model outputs, with tiny
 * block/chunk sizes and every grouping; the scores/probabilities hooks for a head range; and hook
 * replacements flowing on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { BgeM3 } from '../../../src/m3.js';
import { layerName, type ActivationName } from '../../../src/hooks/names.js';
import { attentionGroups, queryBlockRows } from '../../../src/model/fast/attention.js';
import type { FastOptions } from '../../../src/model/fast/ops.js';
import { checkpointDir } from '../../helpers/fixtures.js';
import { loadCases, maxAbsDiff } from '../../helpers/reference.js';

const cases = loadCases();
/** Five texts of different lengths (padded batch), short enough for the reference path to be quick. */
const batch = { inputIds: cases.filter((c) => c.input_ids.length <= 48).slice(0, 5).map((c) => c.input_ids) };

/** Max |a − b| where equal infinities count as equal (masked scores are −inf in both). */
function diff(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    if (x[i] === y[i]) continue;
    const d = Math.abs(x[i]! - y[i]!);
    m = Number.isNaN(d) ? Infinity : Math.max(m, d);
  }
  return m;
}

const SETTINGS: Array<[string, FastOptions]> = [
  ['defaults', {}],
  ['one query row per block', { blockSize: 1 }],
  ['blocks of 3 query rows', { blockSize: 3 }],
  ['no grouping of rows', { groupTokens: 1 }],
  ['all rows in one group', { groupTokens: 1 << 20 }],
  ['one group, blocks of 5 rows', { groupTokens: 1 << 20, blockSize: 5 }],
  ['a tiny score budget', { scoreBudgetBytes: 256 }],
  ['projections and feed-forward in chunks of 7 tokens', { chunkTokens: 7 }],
  ['chunks of 5 tokens, one group, blocks of 4 rows', { chunkTokens: 5, groupTokens: 1 << 20, blockSize: 4 }],
];

describe.each(['tiny-m3', 'sharp-m3', 'small-m3'] as const)("%s: forward 'fast' = forward 'reference'", (ckpt) => {
  let m3: BgeM3;
  let layers: number;
  let names: ActivationName[];
  let reference: { cache: Map<ActivationName, tf.Tensor>; dense: Float32Array[] };

  const run = async (fast: FastOptions | 'reference') => {
    const how = fast === 'reference' ? { forward: 'reference' as const } : { forward: 'fast' as const, fast };
    const { output, cache } = await m3.runWithCache(batch, { names, ...how });
    const got = new Map(cache.names().map((n) => [n, cache.get(n)]));
    return { cache: got, dense: output.denseVecs!, dispose: () => cache.dispose() };
  };

  beforeAll(async () => {
    m3 = await BgeM3.load(checkpointDir(ckpt));
    layers = m3.config.num_hidden_layers;
    names = [];
    for (let i = 0; i < layers; i++) names.push(layerName(i, 'attention.self.hook_out'), layerName(i, 'hook_out'));
    names.push('colbert_head.hook_out', 'sparse_head.hook_out');
    reference = await run('reference');
  });
  afterAll(() => {
    tf.dispose([...reference.cache.values()]);
    m3.dispose();
  });

  // tiny-m3 (same shapes as sharp-m3, smaller weights) runs three settings; the others every one.
  it.each(ckpt === 'tiny-m3' ? SETTINGS.filter((_, k) => k % 4 === 0) : SETTINGS)('%s', async (_label, opts) => {
    const fast = await run(opts);
    let worst = 0;
    for (const n of names) worst = Math.max(worst, diff(fast.cache.get(n)!, reference.cache.get(n)!));
    fast.dense.forEach((v, i) => { worst = Math.max(worst, maxAbsDiff(v, reference.dense[i]!)); });
    fast.dispose();
    console.log(`${ckpt} ${_label}: max abs diff to the reference path ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(2e-6);
  });

  it('hook_scores / hook_probs cover the chosen heads, equal to the reference path, for the chosen layers', async () => {
    const watched: ActivationName[] = [layerName(0, 'attention.self.hook_scores'), layerName(layers - 1, 'attention.self.hook_probs')];
    const ref = await m3.runWithCache(batch, { names: watched, forward: 'reference' });
    const fast = await m3.runWithCache(batch, { names: watched, fast: { hookHeads: [1, 3], blockSize: 2 } });
    for (const n of watched) {
      const all = ref.cache.get(n);
      const [B, , T] = all.shape as number[];
      const want = tf.slice(all, [0, 1, 0, 0], [B!, 2, T!, T!]);
      expect(fast.cache.get(n).shape).toEqual([B, 2, T, T]);
      expect(diff(fast.cache.get(n), want), n).toBeLessThanOrEqual(1e-6);
      want.dispose();
    }
    fast.output.denseVecs!.forEach((v, i) => expect(maxAbsDiff(v, ref.output.denseVecs![i]!)).toBeLessThanOrEqual(2e-6));
    ref.cache.dispose();
    fast.cache.dispose();
  });

  it('replacements returned by the q/k/v and probability hooks flow on as in the reference path', async () => {
    const heads = m3.config.num_attention_heads;
    const zeroHead = (t: tf.Tensor) => tf.mul(t, tf.tensor([...Array(heads)].map((_, h) => (h === 1 ? 0 : 1)), [1, heads, 1, 1]));
    const hooks = {
      [layerName(0, 'attention.self.hook_v')]: zeroHead,
      [layerName(0, 'attention.self.hook_k')]: (t: tf.Tensor) => tf.mul(t, 1.5),
      [layerName(layers - 1, 'attention.self.hook_q')]: (t: tf.Tensor) => tf.add(t, 0.1),
      [layerName(layers - 1, 'attention.self.hook_probs')]: zeroHead,
    };
    const a = await m3.runWithHooks(batch, hooks, { forward: 'reference' });
    const b = await m3.runWithHooks(batch, hooks, { fast: { blockSize: 4 } });
    const c = await m3.runWithHooks(batch, {}, {});
    let worst = 0;
    let changed = 0;
    a.denseVecs!.forEach((v, i) => {
      worst = Math.max(worst, maxAbsDiff(v, b.denseVecs![i]!));
      changed = Math.max(changed, maxAbsDiff(v, c.denseVecs![i]!));
    });
    expect(changed).toBeGreaterThan(1e-3); // the hooks did something
    expect(worst).toBeLessThanOrEqual(2e-6);
  });

  it('rejects an unknown formulation and the option it replaced, naming them', async () => {
    await expect(m3.encode(batch, { forward: 'plain' as never })).rejects.toThrow(/forward must be one of 'fast', 'reference', got "plain"/);
    await expect(m3.runWithHooks(batch, {}, { attention: { plain: true } } as never)).rejects.toThrow(/'attention' option was replaced by forward/);
  });

  it('rejects a head range outside the model', async () => {
    await expect(m3.runWithCache(batch, { names: [layerName(0, 'attention.self.hook_probs')], fast: { hookHeads: [2, 99] } }))
      .rejects.toThrow(/fast.hookHeads must be \[from, to\)/);
  });
});

describe('block and group sizes', () => {
  it('one block of one head stays within the score budget', () => {
    expect(queryBlockRows(8192)).toBe(1024); // 2 · 1024 · 8192 · 4 B = 64 MiB
    expect(queryBlockRows(512)).toBe(512);
    expect(queryBlockRows(100, { blockSize: 7 })).toBe(7);
    expect(queryBlockRows(100, { blockSize: 1000 })).toBe(100);
  });

  it('short rows are grouped up to ~128 tokens, long ones attended alone', () => {
    expect(attentionGroups(32, 16)).toHaveLength(4);
    expect(attentionGroups(8, 128)).toHaveLength(8);
    expect(attentionGroups(3, 16).map((g) => g.count)).toEqual([3]);
  });
});
