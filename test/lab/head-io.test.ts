/**
 * Saved heads: safetensors + torch.save files that a BGE-M3 snapshot takes as its sparse head
 * (`BgeM3.load` then encodes with the trained weights), read back by the project's torch reader;
 * loadHead round trips; bad head.json fields are named.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BgeM3 } from '../../src/m3.js';
import { createTrainableHead } from '../../src/lab/heads/registry.js';
import { loadHead, saveHead } from '../../src/lab/head-io.js';
import { hiddenStates } from '../../src/lab/hidden.js';
import { rng } from '../../src/lab/train.js';
import { openTorchCheckpoint } from '../../src/weights/torch.js';
import { toFloat16Bits as f32ToF16 } from '../../src/weights/dtype.js';
import { writeStateDict } from '../../src/weights/torch-writer.js';
import { checkpointDir } from '../helpers/fixtures.js';

const TEXTS = ['What is BGE M3?', 'BM25 is a bag-of-words retrieval function that ranks a set of documents.'];

describe('saving and loading heads (tiny-m3)', () => {
  let m3: BgeM3;
  let tmp: string;
  beforeAll(async () => {
    m3 = await BgeM3.load(checkpointDir('tiny-m3'));
    tmp = await mkdtemp(join(tmpdir(), 'bge-m3-head-'));
  });
  afterAll(async () => {
    m3.dispose();
    await rm(tmp, { recursive: true, force: true });
  });

  /** A head moved away from the model's own weights, as training would. */
  function movedHead(name: string) {
    const head = createTrainableHead(name, m3);
    const rand = rng(1);
    for (const v of head.trainable) tf.tidy(() => v.assign(tf.add(v, tf.tensor(Float32Array.from({ length: v.size }, () => (rand() - 0.3) * 0.05), v.shape))));
    return head;
  }

  it('an m3 head saved as sparse_linear.{safetensors,pt} becomes the snapshot\'s head in BgeM3.load', async () => {
    const head = movedHead('m3');
    const dir = join(tmp, 'm3-head');
    await saveHead(head, dir);
    const want = Array.from(head.trainable[0]!.dataSync());
    // The torch file reads back through the project's torch reader, exactly.
    const pt = await openTorchCheckpoint(join(dir, 'sparse_linear.pt'));
    expect(pt.keys().sort()).toEqual(['bias', 'weight']);
    expect(Array.from((await pt.readFloat32('weight')).data)).toEqual(want);
    expect((await pt.readFloat32('weight')).shape).toEqual([1, m3.config.hidden_size]);
    await pt.close();
    // What the trained head says, through the lab.
    const enc = await m3.encode(TEXTS, { returnDense: false, returnSparse: true });
    const labWeights: Record<string, number>[] = [];
    for (const ids of enc.inputIds) {
      const h = await hiddenStates(m3, [ids]);
      labWeights.push((await head.weigh({ inputIds: [ids], hidden: h, side: 'document' }))[0]!);
      h.dispose();
    }
    expect(labWeights).not.toEqual(enc.lexicalWeights); // the head did move
    for (const file of ['sparse_linear.pt', 'sparse_linear.safetensors']) {
      const snap = join(tmp, `snap-${file}`);
      await cp(checkpointDir('tiny-m3'), snap, { recursive: true });
      await rm(join(snap, 'sparse_linear.pt'));
      await cp(join(dir, file), join(snap, file));
      const loaded = await BgeM3.load(snap);
      const got = (await loaded.encode(TEXTS, { returnDense: false, returnSparse: true })).lexicalWeights!;
      loaded.dispose();
      let err = 0;
      got.forEach((w, i) => {
        expect(Object.keys(w).sort()).toEqual(Object.keys(labWeights[i]!).sort());
        for (const k of Object.keys(w)) err = Math.max(err, Math.abs(w[k]! - labWeights[i]![k]!));
      });
      console.log(`snapshot with the trained ${file}: encode vs the lab head, max abs err ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-5);
    }
    head.dispose();
  });

  it('loadHead round trips every trainable head; an existing folder is kept unless force', async () => {
    for (const name of ['m3', 'm3-log1p', 'splade']) {
      const head = movedHead(name);
      const dir = join(tmp, `rt-${name}`);
      await saveHead(head, dir);
      await expect(saveHead(head, dir)).rejects.toThrow(/exists; pass force/);
      await saveHead(head, dir, { force: true });
      const before = tf.memory().numTensors;
      const back = await loadHead(dir, m3);
      expect(back.config).toEqual(head.config);
      back.trainable.forEach((v, i) => expect(Array.from(v.dataSync())).toEqual(Array.from(head.trainable[i]!.dataSync())));
      back.dispose();
      expect(tf.memory().numTensors).toBe(before);
      head.dispose();
      expect(existsSync(`${dir}.tmp-${process.pid}`)).toBe(false);
    }
  });

  it('writeStateDict writes float16 as torch does: the fixture\'s float16 head round trips exactly', async () => {
    const src = await openTorchCheckpoint(join(checkpointDir('tiny-m3'), 'sparse_linear.pt'));
    const w = await src.readFloat32('weight');
    const b = await src.readFloat32('bias');
    expect(src.info('weight').dtype).toBe('F16');
    await src.close();
    const out = join(tmp, 'half.pt');
    await writeStateDict(out, [{ name: 'weight', shape: w.shape, data: w.data, dtype: 'F16' }, { name: 'bias', shape: b.shape, data: b.data, dtype: 'F16' }]);
    await expect(writeStateDict(out, [])).rejects.toThrow(/EEXIST/);
    const back = await openTorchCheckpoint(out);
    expect(back.info('weight').dtype).toBe('F16');
    expect(Array.from((await back.readFloat32('weight')).data)).toEqual(Array.from(w.data));
    expect(Array.from((await back.readFloat32('bias')).data)).toEqual(Array.from(b.data));
    await back.close();
    // Rounding to nearest even, overflow to inf, subnormals.
    expect([1, 65504, 65520, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -24, 2 ** -26, -0].map(f32ToF16)).toEqual([0x3c00, 0x7bff, 0x7c00, 0x3c00, 0x3c02, 0x0001, 0x0000, 0x8000]);
  });

  it('a bad head.json names the file and the field', async () => {
    const head = createTrainableHead('m3', m3, { layer: 1 });
    const dir = join(tmp, 'bad');
    await saveHead(head, dir);
    head.dispose();
    const cfgFile = join(dir, 'head.json');
    const cfg = JSON.parse(await readFile(cfgFile, 'utf8'));
    expect(cfg).toEqual({ head: 'm3', layer: 1, hiddenSize: 32, vocabSize: 8002 });
    for (const [patch, msg] of [
      [{ head: 'bm99' }, /head\.json: "head" must be one of m3, m3-log1p, splade, got "bm99"/],
      [{ layer: 9 }, /head\.json: "layer" must be an integer in \[0, 2\], got 9/],
      [{ hiddenSize: 64 }, /head\.json: "hiddenSize" is 64, the model's hidden size is 32/],
    ] as const) {
      await writeFile(cfgFile, JSON.stringify({ ...cfg, ...patch }));
      await expect(loadHead(dir, m3)).rejects.toThrow(msg);
    }
    await writeFile(cfgFile, '{oops');
    await expect(loadHead(dir, m3)).rejects.toThrow(/head\.json: malformed JSON/);
    await expect(loadHead(join(tmp, 'nowhere'), m3)).rejects.toThrow(/nowhere\/head\.json: no such file/);
  });
});
