/**
 * Training learns, resumes and leaks nothing. On a synthetic set (relevance carried by shared rare
 * tokens, frequent tokens everywhere) a head trained from BGE-M3's own weights (tiny-m3) must beat
 * its starting point on held-out queries' MRR@10 by at least 0.2, with the loss falling.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BgeM3 } from '../../src/m3.js';
import { createTrainableHead } from '../../src/lab/heads/registry.js';
import { memoryHiddenSource, type HiddenSource } from '../../src/lab/hidden-source.js';
import { trainHead, type TrainOptions } from '../../src/lab/train.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { heldOutMrr, syntheticSet, type SyntheticSet } from './synthetic.js';

const OPTS: TrainOptions = { epochs: 8, batchSize: 8, learningRate: 0.02, seed: 3, temperature: 0.1 };

describe('training (tiny-m3, synthetic set)', () => {
  let m3: BgeM3;
  let set: SyntheticSet;
  let source: HiddenSource;
  let tmp: string;
  beforeAll(async () => {
    m3 = await BgeM3.load(checkpointDir('tiny-m3'));
    set = syntheticSet({ docs: 60, trainQueries: 40, seed: 11, vocab: m3.config.vocab_size });
    source = await memoryHiddenSource(m3, set.texts);
    tmp = await mkdtemp(join(tmpdir(), 'bge-m3-train-'));
  });
  afterAll(async () => {
    m3.dispose();
    await rm(tmp, { recursive: true, force: true });
  });

  for (const name of ['m3', 'm3-log1p']) {
    it(`${name}: loss falls and held-out MRR@10 beats the starting head by >= 0.2; no tensor leaks`, async () => {
      const head = createTrainableHead(name, m3);
      const before = await heldOutMrr(head, source, set);
      const tensors = tf.memory().numTensors;
      const { curve } = await trainHead(head, set.train, source, OPTS);
      expect(tf.memory().numTensors).toBe(tensors);
      const after = await heldOutMrr(head, source, set);
      console.log(`${name}: held-out MRR@10 ${before.toFixed(4)} -> ${after.toFixed(4)}; loss per epoch ${curve.map((e) => e.loss.toFixed(4)).join(' ')}; nnz/query ${curve.at(-1)!.nnzQuery.toFixed(2)}, nnz/doc ${curve.at(-1)!.nnzDocument.toFixed(2)}`);
      expect(curve).toHaveLength(OPTS.epochs);
      expect(curve.at(-1)!.loss).toBeLessThan(0.7 * curve[0]!.loss);
      expect(after - before).toBeGreaterThanOrEqual(0.2);
      head.dispose();
    });
  }

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
