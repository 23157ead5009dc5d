/**
 * The hidden-state cache: states equal to encode's (through the m3 head, bit for bit), shards that
 * merge into exactly the single-pass files, F16 rounding, and refusals.
 */
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { BgeM3 } from '../../src/m3.js';
import { mergeHiddenCaches, modelFingerprint, openHiddenCache, toFloat16Bits, writeHiddenCache, type CacheText, type HiddenCache } from '../../src/lab/hidden-cache.js';
import { openSafetensors, writeSafetensors } from '../../src/weights/safetensors.js';
import { rng } from '../../src/lab/train.js';
import { hiddenStates } from '../../src/lab/hidden.js';
import { memoryHiddenSource } from '../../src/lab/hidden-source.js';
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

/** Files this process holds open under `dir` (Linux: /proc/self/fd). */
function openFilesUnder(dir: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(join('/proc/self/fd', fd)).startsWith(dir)) n++;
    } catch { /* closed meanwhile */ }
  }
  return n;
}

/** 40 texts: with `equal`, every one the same 5 words in another order (the same token count); else 1 to 14 words. */
function manyTexts(equal: boolean): CacheText[] {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'river', 'Paris', 'north', 'model', 'query', 'sparse', 'weight', 'token', 'layer', 'cache'];
  const r = rng(equal ? 5 : 6);
  return Array.from({ length: 40 }, (_, i) => {
    const ws = equal ? words.slice(0, 5) : Array.from({ length: 1 + ((i * 7) % 14) }, () => words[Math.floor(r() * words.length)]!);
    if (equal) for (let k = ws.length - 1; k > 0; k--) { const j = Math.floor(r() * (k + 1)); [ws[k], ws[j]] = [ws[j]!, ws[k]!]; }
    return { id: `x${i}`, text: ws.join(' ') };
  });
}

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

  for (const equal of [true, false]) {
    it(`overlapping get()s over a cache of many parts return every text's own states (${equal ? 'equal' : 'unequal'} lengths); open files stay bounded and are all closed`, async () => {
      const texts = manyTexts(equal);
      const dir = join(root, `many-${equal}`);
      const res = await writeHiddenCache(m3, texts, dir, LIMITS);
      expect(res.batches).toBe(14); // 40 texts, 3 per batch
      const lengths = new Set(m3.tokenize(texts.map((t) => t.text)).map((r) => r.length));
      expect(lengths.size === 1).toBe(equal);
      // The truth: each planned batch through the encoder, row by row.
      const cache = await openHiddenCache(dir, { maxOpenFiles: 2 });
      const truth = new Map<string, Float32Array>();
      for (const members of cache.manifest.plan) {
        const ids = m3.tokenize(members.map((i) => texts[i]!.text));
        const h = await hiddenStates(m3, ids, 2);
        const data = (await h.data()) as Float32Array;
        const T = h.shape[1];
        h.dispose();
        members.forEach((i, b) => truth.set(texts[i]!.id, data.slice(b * T * 32, (b * T + ids[b]!.length) * 32)));
      }
      // Every id twice, in a shuffled order, all at once: many parts read at once through 2 open files.
      const r = rng(9);
      const order = [...texts, ...texts].map((t) => t.id).sort(() => r() - 0.5);
      let most = 0;
      const got = await Promise.all(order.map(async (id) => {
        const x = await cache.get(id);
        most = Math.max(most, openFilesUnder(dir));
        return x;
      }));
      let wrong = 0;
      got.forEach((x, k) => {
        expect(x.id).toBe(order[k]);
        if (x.hidden.length !== truth.get(order[k]!)!.length || x.hidden.some((v, j) => v !== truth.get(order[k]!)![j])) wrong++;
      });
      console.log(`${order.length} overlapping reads of ${res.batches} parts: ${wrong} wrong, at most ${most} files open (bound 2)`);
      expect(wrong).toBe(0);
      expect(most).toBeLessThanOrEqual(2);
      // close() waits for reads under way, then nothing stays open, and later reads are refused.
      const late = cache.get(texts[0]!.id);
      await cache.close();
      await expect(late).resolves.toMatchObject({ id: texts[0]!.id });
      expect(openFilesUnder(dir)).toBe(0);
      await expect(cache.get(texts[1]!.id)).rejects.toThrow(/the cache is closed/);
    });
  }

  it('refuses a part of another layer, dtype or cache, or with another tensor shape, naming the part and the field, and leaks no file', async () => {
    const texts = manyTexts(false);
    const base = join(root, 'parts-base');
    await writeHiddenCache(m3, texts, base, LIMITS);
    const part = 'part-000004.safetensors';
    const variant = async (name: string, opts: object) => {
      const d = join(root, name);
      await writeHiddenCache(m3, texts, d, { ...LIMITS, ...opts });
      return join(d, part);
    };
    const swapped = async (from: string) => {
      const d = join(root, `swapped-${readdirSync(root).length}`);
      cpSync(base, d, { recursive: true });
      copyFileSync(from, join(d, part));
      return d;
    };
    const refusedAt = async (d: string, msg: RegExp) => {
      const c = await openHiddenCache(d, { maxOpenFiles: 3 });
      const id = c.ids()[c.manifest.plan[4]![0]!]!;
      await expect(c.get(id)).rejects.toThrow(msg);
      await expect(c.get(id)).rejects.toThrow(msg); // tried again, refused again
      expect(openFilesUnder(d)).toBe(0);
      await c.close();
    };
    await refusedAt(await swapped(await variant('many-l1', { layer: 1 })), /part-000004\.safetensors: layer is 1 in this part, 2 in the cache's manifest/);
    await refusedAt(await swapped(await variant('many-f16', { float16: true })), /part-000004\.safetensors: dtype is "F16" in this part, "F32" in the cache's manifest/);
    // Another corpus with the same plan (one text changed, its length kept): only the manifest digest tells.
    const other = texts.map((t, i) => (i === 5 ? { ...t, text: t.text.split(' ').reverse().join(' ') } : t));
    expect(other[5]!.text).not.toBe(texts[5]!.text);
    const od = join(root, 'many-other');
    await writeHiddenCache(m3, other, od, LIMITS);
    await refusedAt(await swapped(join(od, part)), /part-000004\.safetensors: manifest is "[0-9a-f]+" in this part, the cache's manifest digest is "[0-9a-f]+" \(a part of another cache/);
    // The right metadata, a tensor of another shape.
    const f = await openSafetensors(join(base, part));
    const tensors = await Promise.all(f.keys().map(async (k) => {
      const raw = await f.readRaw(k);
      const cut = k === 'hidden.1' ? { shape: [raw.shape[0]!, 16], bytes: raw.bytes.slice(0, raw.shape[0]! * 16 * 4) } : { shape: raw.shape, bytes: raw.bytes };
      return { name: k, dtype: raw.dtype, shape: cut.shape, bytes: () => cut.bytes };
    }));
    const meta = { ...f.metadata };
    await f.close();
    const bent = join(root, 'bent.safetensors');
    await writeSafetensors(bent, tensors, { metadata: meta });
    await refusedAt(await swapped(bent), /part-000004\.safetensors: tensor 'hidden\.1' is F32 \[\d+,16\], the manifest asks for F32 \[\d+, 32\]/);

    // A resume redoes a foreign part; a merge refuses one.
    const d = await swapped(join(root, 'many-l1', part));
    const r = await writeHiddenCache(m3, texts, d, { ...LIMITS, resume: true });
    expect(r).toMatchObject({ written: 1, kept: 13 });
    expect(files(d)).toEqual(files(base));
    const shard = join(root, 'many-shard');
    await writeHiddenCache(m3, texts, shard, { ...LIMITS, shard: { index: 0, count: 2 } });
    copyFileSync(join(root, 'many-f16', part), join(shard, part));
    await expect(mergeHiddenCaches([shard], join(root, 'many-merged'))).rejects.toThrow(/merge: .*many-shard[/\\]part-000004\.safetensors: dtype is "F16" in this part/);
    expect(existsSync(join(root, 'many-merged', part))).toBe(false);
  });

  it('refuses a cache of format version 1, saying to rebuild it, and a damaged manifest naming the field', async () => {
    const d = join(root, 'v1');
    cpSync(join(root, 'full'), d, { recursive: true });
    const m = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8'));
    writeFileSync(join(d, 'manifest.json'), JSON.stringify({ ...m, version: 1 }));
    await expect(openHiddenCache(d)).rejects.toThrow(/manifest\.json: cache format version 1, this bge-m3-tfjs reads version 2 only; rebuild the cache/);
    await expect(writeHiddenCache(m3, TEXTS, d, { ...LIMITS, resume: true })).rejects.toThrow(/cache format version 1.*rebuild/);
    const { model: _model, ...noModel } = m;
    writeFileSync(join(d, 'manifest.json'), JSON.stringify(noModel));
    await expect(openHiddenCache(d)).rejects.toThrow(/manifest\.json: "model" is missing/);
    writeFileSync(join(d, 'manifest.json'), JSON.stringify({ ...m, plan: m.plan.slice(1) }));
    await expect(openHiddenCache(d)).rejects.toThrow(/manifest\.json: "plan" must hold every text index exactly once/);
  });

  it('memoryHiddenSource with `keep` gives the kept texts the states of the whole set\'s batches, as the cache holds them', async () => {
    const texts = manyTexts(false);
    const dir = join(root, 'memory-keep');
    await writeHiddenCache(m3, texts, dir, LIMITS);
    const cache = await openHiddenCache(dir);
    const ids = m3.tokenize(texts.map((t) => t.text));
    const keep = new Set(texts.filter((_, i) => i % 7 === 3).map((t) => t.id));
    const before = tf.memory().numTensors;
    const mem = await memoryHiddenSource(m3, new Map(texts.map((t, i) => [t.id, ids[i]!])), 2, LIMITS, keep);
    expect(tf.memory().numTensors).toBe(before);
    for (const id of keep) {
      const [a, b] = [await mem.get(id), await cache.get(id)];
      expect(a.inputIds).toEqual(b.inputIds);
      expect(a.hidden).toEqual(b.hidden);
    }
    await cache.close();
    await expect(mem.get(texts[0]!.id)).rejects.toThrow(/no hidden states for text id 'x0'/);
    await expect(memoryHiddenSource(m3, new Map([['a', ids[0]!]]), 2, LIMITS, new Set(['b']))).rejects.toThrow(/keep names 'b'/);
  });

  it('the model fingerprint covers the tokenizer: the same weights with another tokenization are another model', () => {
    const a = modelFingerprint(m3);
    expect(modelFingerprint(m3)).toBe(a);
    const tokenize = m3.tokenize.bind(m3);
    // Another tokenizer, simulated: one id of every tokenization changed.
    m3.tokenize = (texts, maxLength) => tokenize(texts, maxLength).map((r) => [r[0]!, r[1]! + 1, ...r.slice(2)]);
    try {
      expect(modelFingerprint(m3)).not.toBe(a);
    } finally {
      m3.tokenize = tokenize;
    }
  });
});
