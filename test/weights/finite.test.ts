/**
 * A NaN or Infinity in a weight used to give silent nulls (dense and ColBERT null, lexical weights {},
 * sparse scores 0, exit 0). Now every path that produces outputs refuses, naming the file and tensor;
 * a bad value the inputs never reach changes nothing and is not reported.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as tf from '@tensorflow/tfjs-core';
import { BgeM3 } from '../../src/m3.js';
import { NonFiniteWeightsError } from '../../src/weights/finite.js';
import { openTorchCheckpoint } from '../../src/weights/torch.js';
import { entryDataOffset, readZipDirectory } from '../../src/weights/zip.js';
import { openFileSource } from '../../src/host/file-source.js';
import { run as runEncode } from '../../src/cli/encode.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { loadCases, maxAbsDiff, Reference } from '../helpers/reference.js';

const CKPT = 'tiny-m3' as const;
const TEXTS = ['What is BGE M3?', 'BM25 is a bag-of-words retrieval function'];

/** A copy of the fixture snapshot in a temp dir. */
function copySnapshot(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bge-m3-nonfinite-'));
  for (const f of readdirSync(checkpointDir(CKPT))) copyFileSync(join(checkpointDir(CKPT), f), join(dir, f));
  return dir;
}

/** Writes float32 `value` at flat `index` of tensor `name` in `dir/model.safetensors` (header parsed here, independently). */
function patchSafetensors(dir: string, name: string, index: number, value: number): void {
  const path = join(dir, 'model.safetensors');
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const t = header[name]!;
  expect(t.dtype).toBe('F32');
  const b = Buffer.alloc(4);
  b.writeFloatLE(value);
  const fd = openSync(path, 'r+');
  writeSync(fd, b, 0, 4, 8 + n + t.data_offsets[0] + 4 * index);
  closeSync(fd);
}

/** Writes float32 `value` at flat `index` of tensor `name` in a torch.save file (a contiguous F32 view). */
async function patchTorch(path: string, name: string, index: number, value: number): Promise<void> {
  const ck = await openTorchCheckpoint(path);
  const view = ck.view(name);
  await ck.close();
  const { open } = await import('node:fs/promises');
  const fh = await open(path, 'r+');
  const src = await openFileSource(path);
  const entry = (await readZipDirectory(src)).byName.get(view.entry)!;
  const start = await entryDataOffset(src, entry);
  await src.close();
  const b = Buffer.alloc(4);
  b.writeFloatLE(value);
  await fh.write(b, 0, 4, start + 4 * (view.storageOffset + index));
  await fh.close();
}

/** Expects `p` to reject with a NonFiniteWeightsError naming `file` and `tensor`; returns the message. */
async function refusesNaming(p: Promise<unknown>, file: string, tensor: string, first: RegExp): Promise<string> {
  let err: unknown;
  try { await p; } catch (e) { err = e; }
  expect(err, 'expected a NonFiniteWeightsError').toBeInstanceOf(NonFiniteWeightsError);
  const msg = (err as Error).message;
  expect(msg).toContain(file);
  expect(msg).toContain(`tensor '${tensor}' has 1 non-finite values`);
  expect(msg).toMatch(first);
  return msg;
}

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, done: () => void): void { this.text += chunk.toString(); done(); }
}

const models: BgeM3[] = [];
afterAll(() => { for (const m of models) m.dispose(); });
const load = async (dir: string): Promise<BgeM3> => {
  const m = await BgeM3.load(dir, { backend: 'cpu' });
  models.push(m);
  return m;
};

describe('non-finite weights', () => {
  it('a NaN in an encoder weight: encode, computeScore and runWithCache refuse naming it; nothing leaks', async () => {
    const dir = copySnapshot();
    patchSafetensors(dir, 'encoder.layer.1.attention.self.query.weight', 5, NaN);
    const m3 = await load(dir);
    const before = tf.memory().numTensors;
    const file = join(dir, 'model.safetensors');
    const msg = await refusesNaming(m3.encode(TEXTS), file, 'encoder.layer.1.attention.self.query.weight', /first: NaN at flat index 5/);
    console.log(`encode: ${msg}`);
    await refusesNaming(m3.encode(TEXTS, { returnDense: false, returnSparse: true }), file, 'encoder.layer.1.attention.self.query.weight', /NaN/);
    await refusesNaming(m3.computeScore([[TEXTS[0]!, TEXTS[1]!]]), file, 'encoder.layer.1.attention.self.query.weight', /NaN/);
    await refusesNaming(m3.runWithCache(TEXTS), file, 'encoder.layer.1.attention.self.query.weight', /NaN/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('+Infinity in the <s> embedding row and -Infinity in colbert_linear.pt: each named; dense alone is unaffected by the ColBERT head', async () => {
    const dir = copySnapshot();
    const H = 32;
    patchSafetensors(dir, 'embeddings.word_embeddings.weight', 0 * H + 3, Infinity); // row of <s> (id 0), used by every input
    const m3 = await load(dir);
    await refusesNaming(m3.encode(TEXTS), join(dir, 'model.safetensors'), 'embeddings.word_embeddings.weight', /first: Infinity at flat index 3/);

    const dir2 = copySnapshot();
    await patchTorch(join(dir2, 'colbert_linear.pt'), 'weight', 7, -Infinity);
    const m3b = await load(dir2);
    const ref = await Reference.open(CKPT);
    const dense = await m3b.encode(TEXTS.slice(0, 1)); // dense only: the ColBERT head is not run
    const c = loadCases().find((x) => x.text === TEXTS[0])!;
    const err = maxAbsDiff(dense.denseVecs![0]!, (await ref.tensor(c.id, 'dense_head.hook_out')).data);
    console.log(`dense with a bad ColBERT weight: max abs error vs reference ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(1e-4);
    await ref.close();
    const msg = await refusesNaming(m3b.encode(TEXTS, { returnColbert: true }), join(dir2, 'colbert_linear.pt'), 'colbert_linear.weight', /first: -Infinity at flat index 7/);
    console.log(`ColBERT: ${msg}`);
  });

  it('a NaN the inputs never reach (position row 8000) changes no output and is not reported', async () => {
    const dir = copySnapshot();
    patchSafetensors(dir, 'embeddings.position_embeddings.weight', 8000 * 32, NaN);
    const m3 = await load(dir);
    const ref = await Reference.open(CKPT);
    const c = loadCases().find((x) => x.id === 'readme_q1')!;
    const out = await m3.encode([c.text], { returnSparse: true, returnColbert: true });
    const err = maxAbsDiff(out.denseVecs![0]!, (await ref.tensor(c.id, 'dense_head.hook_out')).data);
    console.log(`unused NaN: dense max abs error vs reference ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(1e-4);
    expect(Object.keys(out.lexicalWeights![0]!).length).toBeGreaterThan(0);
    await ref.close();
  });

  it('bge-m3 encode exits 1 naming the tensor, printing no output lines', async () => {
    const dir = copySnapshot();
    patchSafetensors(dir, 'encoder.layer.0.output.dense.bias', 2, NaN);
    const stdout = new Capture();
    const stderr = new Capture();
    const code = await runEncode(['--model', dir, '--backend', 'cpu', ...TEXTS], { stdout, stderr });
    console.log(`CLI exit ${code}: ${stderr.text.trim()}`);
    expect(code).toBe(1);
    expect(stderr.text).toMatch(/tensor 'encoder\.layer\.0\.output\.dense\.bias' has 1 non-finite values \(first: NaN at flat index 2\)/);
    expect(stdout.text).toBe('');
  });
});
