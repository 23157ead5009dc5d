/**
 * A sparse head with NaN, ±Infinity or absurdly large weights used to be used silently: `encode`
 * printed `"lexical_weights": {}` (Infinity − Infinity is NaN, which the wasm ReLU turns into 0 after
 * the output check has looked), and `sparse eval` / `sparse lens` printed all-zero numbers, exit 0.
 * Now each refuses at load, naming the file and the tensor. The default (wasm) backend throughout:
 * it is the one whose ReLU hides a NaN.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { run as runEncode } from '../../src/cli/encode.js';
import { run as runEval } from '../../src/cli/sparse-eval.js';
import { run as runLens } from '../../src/cli/sparse-lens.js';
import { loadHead, saveHead } from '../../src/lab/head-io.js';
import { createTrainableHead } from '../../src/lab/heads/registry.js';
import { BgeM3 } from '../../src/m3.js';
import { HeadWeightsError, MAX_HEAD_WEIGHT } from '../../src/weights/finite.js';
import { writeSafetensors } from '../../src/weights/safetensors.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { makeSyntheticBeir } from './beir-fixture.js';

const MODEL = checkpointDir('tiny-m3');
const H = 32;

function sink() {
  let text = '';
  const stream = new Writable({ write(chunk, _enc, cb) { text += String(chunk); cb(); } });
  return { stream, get text() { return text; } };
}

/** Writes an m3-shaped head file (weight [1, H], bias [1]) with the given values. */
async function writeLinear(file: string, weight: Float32Array, bias: number): Promise<void> {
  await rm(file, { force: true });
  await writeSafetensors(file, [
    { name: 'weight', dtype: 'F32', shape: [1, H], bytes: () => new Uint8Array(weight.buffer) },
    { name: 'bias', dtype: 'F32', shape: [1], bytes: () => new Uint8Array(Float32Array.of(bias).buffer) },
  ]);
}

/** The head `sparse train --lr 1e39` used to save: every weight ±Infinity. */
const allInfinite = () => Float32Array.from({ length: H }, (_, i) => (i % 2 ? Infinity : -Infinity));
const oneNaN = () => Float32Array.from({ length: H }, (_, i) => (i === 7 ? NaN : 0.01));
const huge = () => Float32Array.from({ length: H }, (_, i) => (i === 3 ? 1e30 : 0.01));

describe('non-finite and absurdly large sparse heads are refused at load (wasm)', () => {
  let tmp: string;
  let beir: string;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'bge-m3-badhead-'));
    const m3 = await BgeM3.load(MODEL);
    beir = join(tmp, 'beir');
    makeSyntheticBeir(beir, m3.tokenizer, { topics: 6, noise: 4 });
    m3.dispose();
  });
  afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

  /** A copy of the fixture snapshot whose sparse head is `sparse_linear.safetensors` with these values. */
  async function snapshotWith(name: string, weight: Float32Array, bias = 0.05): Promise<string> {
    const dir = join(tmp, name);
    mkdirSync(dir);
    for (const f of readdirSync(MODEL)) if (f !== 'sparse_linear.pt') copyFileSync(join(MODEL, f), join(dir, f));
    await writeLinear(join(dir, 'sparse_linear.safetensors'), weight, bias);
    return dir;
  }

  it('encode: a snapshot whose sparse_linear is ±Infinity, NaN or 1e30 exits 1 naming the file and tensor, printing nothing', async () => {
    for (const [name, weight, bias, msg] of [
      ['inf', allInfinite(), 0.05, /tensor 'sparse_linear\.weight' has 32 non-finite values \(first: -Infinity at flat index 0\)/],
      ['nan', oneNaN(), 0.05, /tensor 'sparse_linear\.weight' has 1 non-finite values \(first: NaN at flat index 7\)/],
      ['nanbias', Float32Array.from({ length: H }, () => 0.01), NaN, /tensor 'sparse_linear\.bias' has 1 non-finite values/],
      ['huge', huge(), 0.05, /tensor 'sparse_linear\.weight' has 1 values beyond ±1e\+6, far larger than any trained head's \(first: 1\.0000000150474662e\+30 at flat index 3\)/],
    ] as const) {
      const dir = await snapshotWith(`snap-${name}`, weight, bias);
      const o = sink();
      const e = sink();
      const code = await runEncode(['--model', dir, '--sparse', 'What is BGE M3?', 'BM25 is a bag-of-words retrieval function'], { stdout: o.stream, stderr: e.stream });
      console.log(`encode, sparse head '${name}': exit ${code}: ${e.text.trim()}`);
      expect(code).toBe(1);
      expect(e.text).toContain(join(dir, 'sparse_linear.safetensors'));
      expect(e.text).toMatch(msg);
      expect(o.text).toBe('');
    }
    // A head at the bound still loads (the bound is on |x|, not on x).
    const ok = await snapshotWith('snap-edge', Float32Array.from({ length: H }, (_, i) => (i === 0 ? -MAX_HEAD_WEIGHT : 0.01)));
    const m3 = await BgeM3.load(ok);
    m3.dispose();
  });

  it('encode with sparse output only: a NaN in an encoder weight is refused, not turned into {} by the ReLU', async () => {
    const dir = await snapshotWith('snap-enc', Float32Array.from({ length: H }, () => 0.01));
    // ±Infinity in the last layer's output bias: its LayerNorm makes every hidden state a NaN computed
    // by the hardware (Inf − Inf), which the wasm ReLU turns into 0, unlike a NaN read from a file.
    const path = join(dir, 'model.safetensors');
    const bytes = readFileSync(path);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
    const t = header['encoder.layer.1.output.dense.bias']!;
    for (let i = 0; i < H; i++) bytes.writeFloatLE(i % 2 ? Infinity : -Infinity, 8 + n + t.data_offsets[0] + 4 * i);
    writeFileSync(path, bytes);
    const m3 = await BgeM3.load(dir);
    const before = tf.memory().numTensors;
    await expect(m3.encode(['What is BGE M3?'], { returnDense: false, returnSparse: true })).rejects.toThrow(/tensor 'encoder\.layer\.1\.output\.dense\.bias' has 32 non-finite values \(first: -Infinity at flat index 0\)/);
    expect(tf.memory().numTensors).toBe(before);
    m3.dispose();
  });

  /** A head folder written by saveHead whose sparse_linear.safetensors is then replaced by these values. */
  async function headFolder(name: string, weight: Float32Array): Promise<string> {
    const m3 = await BgeM3.load(MODEL);
    const head = createTrainableHead('m3', m3);
    const dir = join(tmp, name);
    await saveHead(head, dir);
    head.dispose();
    await writeLinear(join(dir, 'sparse_linear.safetensors'), weight, 0.05);
    await expect(loadHead(dir, m3)).rejects.toBeInstanceOf(HeadWeightsError);
    m3.dispose();
    return dir;
  }

  it('sparse eval and sparse lens: a head folder with ±Infinity, NaN or 1e30 weights exits 1 naming the file and tensor', async () => {
    for (const [name, weight, msg] of [
      ['inf', allInfinite(), /tensor 'weight' has 32 non-finite values/],
      ['nan', oneNaN(), /tensor 'weight' has 1 non-finite values \(first: NaN at flat index 7\)/],
      ['huge', huge(), /tensor 'weight' has 1 values beyond ±1e\+6/],
    ] as const) {
      const dir = await headFolder(`head-${name}`, weight);
      const file = join(dir, 'sparse_linear.safetensors');
      const e = sink();
      const o = sink();
      const code = await runEval(['--model', MODEL, '--beir', beir, '--head', dir, '--json'], { stdout: o.stream, stderr: e.stream });
      console.log(`sparse eval, head '${name}': exit ${code}: ${e.text.trim()}`);
      expect(code).toBe(1);
      expect(e.text).toContain(file);
      expect(e.text).toMatch(msg);
      expect(o.text).toBe('');
      const e2 = sink();
      const o2 = sink();
      const html = join(tmp, `lens-${name}.html`);
      const code2 = await runLens(['--model', MODEL, '--head', dir, '--html', html, 'What is BGE M3?'], { stdout: o2.stream, stderr: e2.stream });
      expect(code2).toBe(1);
      expect(e2.text).toContain(file);
      expect(e2.text).toMatch(msg);
      expect(o2.text).toBe('');
      expect(existsSync(html)).toBe(false);
    }
  });

  it('saveHead writes no head with a non-finite or huge weight', async () => {
    const m3 = await BgeM3.load(MODEL);
    const head = createTrainableHead('m3', m3);
    for (const v of [NaN, Infinity, 1e30]) {
      tf.tidy(() => head.weight.assign(tf.fill([1, H], v)));
      const dir = join(tmp, `unsaved-${v}`);
      await expect(saveHead(head, dir)).rejects.toThrow(/tensor 'sparse_linear\.weight' has 32 (non-finite values|values beyond)/);
      expect(existsSync(dir)).toBe(false);
      expect(readdirSync(tmp).filter((n) => n.startsWith(`.unsaved-${v}`))).toEqual([]);
    }
    head.dispose();
    m3.dispose();
  });
});
