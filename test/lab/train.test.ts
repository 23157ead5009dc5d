/**
 * Training learns, resumes and leaks nothing. On a synthetic set (relevance carried by shared rare
 * tokens, frequent tokens everywhere; tiny-m3) the m3-shaped heads are trained from their starting
 * point (BGE-M3's own weights) and evaluated on held-out queries with
 * trec_eval's metrics, beside the bm25 and idf baselines. The margin: m3 and m3-log1p must gain at
 * least 0.2 MRR@10 on held-out queries, and their loss must fall by 30 % or more.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BgeM3 } from '../../src/m3.js';
import { createHead, createTrainableHead } from '../../src/lab/heads/registry.js';
import { memoryHiddenSource, type HiddenSource } from '../../src/lab/hidden-source.js';
import type { Metrics } from '../../src/lab/metrics.js';
import { trainHead, type TrainOptions } from '../../src/lab/train.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { heldOutMetrics, syntheticSet, type SyntheticSet } from './synthetic.js';

const OPTS: TrainOptions = { epochs: 8, batchSize: 8, learningRate: 0.02, seed: 3, temperature: 0.1 };

describe('training (tiny-m3, synthetic set)', () => {
  let m3: BgeM3;
  let set: SyntheticSet;
  let source: HiddenSource;
  let tmp: string;
  const table: Array<[string, Metrics]> = [];
  beforeAll(async () => {
    m3 = await BgeM3.load(checkpointDir('tiny-m3'));
    set = syntheticSet({ docs: 60, trainQueries: 40, seed: 11, vocab: m3.config.vocab_size });
    source = await memoryHiddenSource(m3, set.texts);
    tmp = await mkdtemp(join(tmpdir(), 'bge-m3-train-'));
  });
  afterAll(async () => {
    const f = (x: number) => x.toFixed(4);
    console.log(`held-out queries (${set.heldOut.length}) of the synthetic set, ${set.docIds.length} documents:\n| head | nDCG@10 | MRR@10 | Recall@100 | MAP |\n|---|---|---|---|---|\n${table.map(([n, m]) => `| ${n} | ${f(m['ndcg@10'])} | ${f(m['mrr@10'])} | ${f(m['recall@100'])} | ${f(m.map)} |`).join('\n')}`);
    m3.dispose();
    await rm(tmp, { recursive: true, force: true });
  });

  // splade trains through the same code (its gradients are checked in gradients.test.ts), but a
  // whole-vocabulary head takes minutes here, so the suite trains the two m3-shaped heads.
  for (const [name, opts, margin] of [['m3', OPTS, 0.2], ['m3-log1p', OPTS, 0.2]] as const) {
    it(`${name}: loss falls and held-out MRR@10 beats the starting head by >= ${margin}; no tensor leaks`, async () => {
      const head = createTrainableHead(name, m3);
      const before = await heldOutMetrics(head, source, set);
      const tensors = tf.memory().numTensors;
      const { curve } = await trainHead(head, set.train, source, opts);
      expect(tf.memory().numTensors).toBe(tensors);
      const after = await heldOutMetrics(head, source, set);
      table.push([`${name} (start)`, before], [`${name} (trained, ${opts.epochs} epochs)`, after]);
      console.log(`${name}: held-out MRR@10 ${before['mrr@10'].toFixed(4)} -> ${after['mrr@10'].toFixed(4)}; loss per epoch ${curve.map((e) => e.loss.toFixed(4)).join(' ')}; nnz/query ${curve.map((e) => e.nnzQuery.toFixed(1)).join(' ')}; nnz/doc ${curve.map((e) => e.nnzDocument.toFixed(1)).join(' ')}`);
      expect(curve).toHaveLength(opts.epochs);
      expect(curve.at(-1)!.loss).toBeLessThan(0.7 * curve[0]!.loss);
      expect(after['mrr@10'] - before['mrr@10']).toBeGreaterThanOrEqual(margin);
      head.dispose();
    });
  }

  it('bm25 and idf baselines on the same token ids', async () => {
    for (const name of ['bm25', 'idf']) {
      const head = createHead(name, m3);
      const m = await heldOutMetrics(head, source, set);
      table.push([name, m]);
      for (const v of Object.values(m)) expect(v).toBeGreaterThanOrEqual(0);
      head.dispose();
    }
  });

  it('a run stopped after 3 epochs and resumed equals an unbroken run, bit for bit', async () => {
    const opts: TrainOptions = { ...OPTS, epochs: 6, flopsQuery: 0.01, flopsDocument: 0.005 };
    const full = createTrainableHead('m3', m3);
    const a = await trainHead(full, set.train, source, opts);
    const dir = join(tmp, 'ckpt');
    const part = createTrainableHead('m3', m3);
    const first = await trainHead(part, set.train, source, { ...opts, checkpointDir: dir, stopAfterEpochs: 3 });
    expect(first.curve).toHaveLength(3);
    part.dispose();
    expect(await readdir(dir)).toEqual(['epoch-0003']);
    const resumed = createTrainableHead('m3', m3); // fresh start point; the checkpoint overrides it
    const b = await trainHead(resumed, set.train, source, { ...opts, checkpointDir: dir, resume: true });
    expect(b.resumedAfter).toBe(3);
    expect(b.curve).toEqual(a.curve);
    for (const [i, v] of full.trainable.entries()) expect(Array.from(resumed.trainable[i]!.dataSync())).toEqual(Array.from(v.dataSync()));
    full.dispose();
    resumed.dispose();
  });

  it('refuses bad options with their names', async () => {
    const head = createTrainableHead('m3', m3);
    await expect(trainHead(head, set.train, source, { epochs: 0 })).rejects.toThrow(/epochs must be an integer >= 1/);
    await expect(trainHead(head, set.train, source, { epochs: 1, temperature: -1 })).rejects.toThrow(/temperature must be a finite number > 0/);
    await expect(trainHead(head, [], source, { epochs: 1 })).rejects.toThrow(/no training examples/);
    await expect(trainHead(head, [{ queryId: 'nope', positiveId: 'd0' }], source, { epochs: 1 })).rejects.toThrow(/no hidden states for text id 'nope'/);
    head.dispose();
  });
});
