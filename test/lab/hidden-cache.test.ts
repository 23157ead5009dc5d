/**
 * The hidden-state cache: states equal to encode's (through the m3 head, bit for bit), shards that
 * merge into exactly the single-pass files, F16 rounding, and refusals.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { BgeM3 } from '../../src/m3.js';
import { mergeHiddenCaches, openHiddenCache, toFloat16Bits, writeHiddenCache, type CacheText } from '../../src/lab/hidden-cache.js';
import { hiddenStates } from '../../src/lab/hidden.js';
import { createHead } from '../../src/lab/heads/registry.js';
import { checkpointDir } from '../helpers/fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'hidden-cache-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// Lengths differ so that encode's longest-first plan groups them into several batches of 3.
const TEXTS: CacheText[] = [
  'What is BGE M3?', 'Defination of BM25',
  'BM25 is a bag-of-words retrieval function that ranks a set of documents based on the query terms appearing in each document.',
  'BGE M3 is an embedding model supporting dense retrieval, lexical matching and multi-vector interaction.',
  '北京是中国的首都', 'Москва — столица России.', 'short', 'a b c d e f g h i j k l m n o p',
].map((text, i) => ({ id: `t${i}`, text }));
const LIMITS = { batchSize: 3, maxTokensPerBatch: 8192 };

/** Files of a cache directory and their bytes. */
function files(dir: string): Map<string, Buffer> {
  return new Map(readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f))]));
}

describe('hidden-state cache (sharp-m3)', () => {
  let m3: BgeM3;
  beforeAll(async () => {
    m3 = await BgeM3.load(checkpointDir('sharp-m3'));
  });
  afterAll(() => m3.dispose());

  it('caches the last layer so that the m3 head on it equals encode().lexicalWeights exactly; leaks no tensor', async () => {
    const dir = join(root, 'full');
    const before = tf.memory().numTensors;
    const res = await writeHiddenCache(m3, TEXTS, dir, LIMITS);
    expect(tf.memory().numTensors).toBe(before);
    expect(res.batches).toBeGreaterThan(2);
    expect(res).toMatchObject({ written: res.batches, kept: 0 });

    const cache = await openHiddenCache(dir);
    expect(cache.ids()).toEqual(TEXTS.map((t) => t.id));
    expect([cache.hiddenSize, cache.layer, cache.dtype]).toEqual([32, 2, 'F32']);
    const enc = await m3.encode(TEXTS.map((t) => t.text), { ...LIMITS, returnDense: false, returnSparse: true });
    // Re-pad each planned batch from the cache and run BGE-M3's own head on it.
    const head = createHead('m3', m3);
    const got: unknown[] = new Array(TEXTS.length);
    for (const members of cache.manifest.plan) {
      const rows = await Promise.all(members.map((i) => cache.get(TEXTS[i]!.id)));
      const T = Math.max(...rows.map((r) => r.inputIds.length));
      const padded = new Float32Array(rows.length * T * 32);
      rows.forEach((r, b) => padded.set(r.hidden, b * T * 32));
      rows.forEach((r, b) => expect(r.inputIds).toEqual(enc.inputIds[members[b]!]));
      const hidden = tf.tensor3d(padded, [rows.length, T, 32]);
      const w = await head.weigh({ inputIds: rows.map((r) => r.inputIds), hidden, side: 'document' });
      hidden.dispose();
      members.forEach((i, b) => { got[i] = w[b]; });
    }
    await cache.close();
    expect(got).toEqual(enc.lexicalWeights);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('caches another layer (hidden_states[1]) as the same batch computes it', async () => {
    const dir = join(root, 'layer1');
    await writeHiddenCache(m3, TEXTS, dir, { ...LIMITS, layer: 1 });
    const cache = await openHiddenCache(dir);
    expect(cache.layer).toBe(1);
    const members = cache.manifest.plan[0]!;
    const ids = m3.tokenize(members.map((i) => TEXTS[i]!.text));
    const h = await hiddenStates(m3, ids, 1);
    const data = h.dataSync();
    const T = h.shape[1];
    h.dispose();
    const r = await cache.get(TEXTS[members[1]!]!.id);
    expect(r.hidden).toEqual(data.slice(T * 32, (T + r.inputIds.length) * 32));
    await cache.close();
  });

  it('three shards merge into exactly the files of one pass', async () => {
    const shards = [0, 1, 2].map((i) => join(root, `shard${i}`));
    for (const [i, d] of shards.entries()) await writeHiddenCache(m3, TEXTS, d, { ...LIMITS, shard: { index: i, count: 3 } });
    await expect(openHiddenCache(shards[0]!)).rejects.toThrow(/cache incomplete, \d+ of \d+ batches missing.*--resume/);
    const merged = join(root, 'merged');
    await mergeHiddenCaches(shards, merged);
    expect(files(merged)).toEqual(files(join(root, 'full')));
    await expect(mergeHiddenCaches([shards[0]!, shards[0]!], join(root, 'm2'))).rejects.toThrow(/part-000000\.safetensors is in both/);
    await expect(mergeHiddenCaches([shards[1]!, join(root, 'layer1')], join(root, 'm3'))).rejects.toThrow(/is not a shard of the same cache.*layer: 2 vs 1/);
  });

  it('refuses to overwrite or mix caches, and resumes only when asked', async () => {
    const dir = join(root, 'full');
    await expect(writeHiddenCache(m3, TEXTS, dir, LIMITS)).rejects.toThrow(/already holds parts of this cache's shard 0\/1; pass --resume/);
    await expect(writeHiddenCache(m3, TEXTS, dir, { ...LIMITS, layer: 1, resume: true })).rejects.toThrow(/holds a different cache \(layer: 2 vs 1\)/);
    await expect(writeHiddenCache(m3, TEXTS.slice(1), dir, { ...LIMITS, resume: true })).rejects.toThrow(/holds a different cache \(corpus/);
    const res = await writeHiddenCache(m3, TEXTS, dir, { ...LIMITS, resume: true });
    expect(res.written).toBe(0);
    expect(res.kept).toBe(res.batches);
    await expect(writeHiddenCache(m3, [TEXTS[0]!, TEXTS[0]!], join(root, 'dup'))).rejects.toThrow(/id "t0" appears twice/);
    await expect(writeHiddenCache(m3, TEXTS, checkpointDir('sharp-m3'))).rejects.toThrow(/is not empty and holds no hidden-state cache/);
  });

  it('float16 stores every value rounded to the nearest half', async () => {
    const dir = join(root, 'f16');
    await writeHiddenCache(m3, TEXTS, dir, { ...LIMITS, float16: true });
    const [a, b] = [await openHiddenCache(join(root, 'full')), await openHiddenCache(dir)];
    expect(b.dtype).toBe('F16');
    let maxRel = 0;
    for (const id of a.ids()) {
      const [x, y] = [(await a.get(id)).hidden, (await b.get(id)).hidden];
      const half = new Float32Array(1);
      for (let i = 0; i < x.length; i++) {
        // decode the expected half bits through a Float32 round trip of the F16 reader's table
        half[0] = y[i]!;
        expect(toFloat16Bits(half[0])).toBe(toFloat16Bits(x[i]!));
        maxRel = Math.max(maxRel, Math.abs(x[i]! - y[i]!) / Math.max(Math.abs(x[i]!), 6.1e-5));
      }
    }
    console.log(`float16 cache: max relative error ${maxRel.toExponential(3)} (half precision: <= 2^-11 = 4.9e-4)`);
    expect(maxRel).toBeLessThanOrEqual(2 ** -11);
    await a.close();
    await b.close();
  });

  it('rounds to half as IEEE does (nearest even, subnormals, overflow)', () => {
    expect(toFloat16Bits(1)).toBe(0x3c00);
    expect(toFloat16Bits(-2)).toBe(0xc000);
    expect(toFloat16Bits(0.1)).toBe(0x2e66);
    expect(toFloat16Bits(65504)).toBe(0x7bff);
    expect(toFloat16Bits(65520)).toBe(0x7c00); // halfway to the next binade rounds to even: Infinity
    expect(toFloat16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(toFloat16Bits(2 ** -25)).toBe(0x0000); // halfway to 0: ties to even
    expect(toFloat16Bits(3 * 2 ** -25)).toBe(0x0002); // 1.5 ulp: ties to even (2)
    expect(toFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // halfway between 1 and 1 + 2^-10: even
    expect(toFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(toFloat16Bits(NaN) & 0x7c00).toBe(0x7c00);
  });
});
