/**
 * The hidden-state cache: one pass of the frozen encoder over a corpus, its hidden states kept on
 * disk so a head can be trained (or evaluated on another layer) without running the encoder again.
 *
 *   DIR/manifest.json                 what the cache holds (model fingerprint, layer, dtype, batch
 *                                     plan, a digest of the ids and texts); every part must match it
 *   DIR/part-000123.safetensors       batch 123 of the plan: per row r, `input_ids.r` [T] I32 and
 *                                     `hidden.r` [T, H] F32 or F16; metadata {"ids": […], "batch": …}
 *
 * The plan is `BgeM3.encode`'s own (`planBatches` over every text, longest first), so each text
 * runs in the batch encode would run it in and its cached states are bit-identical to encode's.
 * Sharding splits that one plan: `--shard i/n` runs the batches whose index mod n == i (batches,
 * not texts, so the result does not depend on n: n shards together write exactly the files one pass
 * writes; longest-first order also spreads long batches evenly over the shards).
 *
 * Crash safety: a part is written to a `.tmp` name and renamed once complete and synced, so a part
 * under its final name is always whole; `resume` keeps parts whose ids match the plan, deletes
 * leftover temporary files, and runs the rest. Shards run in separate directories (separate
 * machines) are combined by `mergeHiddenCaches`; shards sharing one file system may write into the
 * same directory directly.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { BgeM3 } from '../m3.js';
import { openSafetensors, writeSafetensors, type SafetensorsFile, type TensorToWrite } from '../weights/safetensors.js';
import { planBatches } from '../batches.js';
import { hiddenStates } from './hidden.js';

export const CACHE_FORMAT = 'bge-m3-tfjs hidden-state cache';
const MANIFEST = 'manifest.json';

export interface CacheText {
  readonly id: string;
  readonly text: string;
}

export interface Shard {
  readonly index: number;
  readonly count: number;
}

export interface HiddenCacheOptions {
  /** hidden_states index (0 = embeddings … L = last layer, the default). */
  readonly layer?: number;
  /** Store F16 (half the disk; values rounded to nearest even); default F32 (exact). */
  readonly float16?: boolean;
  /** Run only this shard of the plan (default: all of it). */
  readonly shard?: Shard;
  /** Continue a cache in `dir`: keep its finished parts. Without it an existing cache is refused. */
  readonly resume?: boolean;
  /** encode's limits (defaults 16, 8192, 8192): they fix the plan, so resumes must repeat them. */
  readonly batchSize?: number;
  readonly maxTokensPerBatch?: number;
  readonly maxLength?: number;
  /** Called after each batch written: batches done and planned for this shard. */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface Manifest {
  readonly format: string;
  readonly version: 1;
  readonly model: { readonly fingerprint: string; readonly hidden_size: number; readonly num_hidden_layers: number };
  readonly layer: number;
  readonly dtype: 'F32' | 'F16';
  readonly batch_size: number;
  readonly max_tokens_per_batch: number;
  readonly max_length: number;
  readonly texts: number;
  /** sha256 over every (id, text), in input order. */
  readonly corpus_digest: string;
  /** Text indices of each batch of the plan. */
  readonly plan: readonly (readonly number[])[];
  /** The ids, in input order. */
  readonly ids: readonly string[];
}

const partName = (batch: number): string => `part-${String(batch).padStart(6, '0')}.safetensors`;
/** A file being written: hidden (dot) and per process, so concurrent shards in one directory never collide. */
const tmpName = (path: string): string => join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);

/** Identifies the weights: the config and a few small tensors, hashed. */
export function modelFingerprint(model: BgeM3): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(model.config));
  const probe = tf.tidy(() => [
    model.params.sparse_linear.weight.dataSync(),
    model.params.sparse_linear.bias.dataSync(),
    tf.slice(model.params.embeddings.word_embeddings, [0, 0], [Math.min(8, model.config.vocab_size), -1]).dataSync(),
  ]);
  for (const a of probe) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest('hex').slice(0, 32);
}

function corpusDigest(texts: readonly CacheText[]): string {
  const h = createHash('sha256');
  for (const t of texts) h.update(`${JSON.stringify(t.id)}\u0000${JSON.stringify(t.text)}\n`);
  return h.digest('hex');
}

/** float32 -> IEEE half bits, round to nearest even (overflow to ±Infinity, as torch's .half()). */
export function toFloat16Bits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    if (e < -10) return sign; // underflows to ±0
    mant |= 0x800000; // subnormal half: shift the implicit bit in
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++; // may carry into the exponent: still right
  return sign | half;
}

function checkTexts(texts: readonly CacheText[]): void {
  if (!Array.isArray(texts) || texts.length === 0) throw new Error('hidden cache: no texts to cache');
  const seen = new Set<string>();
  texts.forEach((t, i) => {
    if (typeof t?.id !== 'string' || t.id === '') throw new TypeError(`hidden cache: texts[${i}].id must be a non-empty string`);
    if (typeof t.text !== 'string') throw new TypeError(`hidden cache: texts[${i}].text must be a string`);
    if (seen.has(t.id)) throw new Error(`hidden cache: id ${JSON.stringify(t.id)} appears twice (texts[${i}])`);
    seen.add(t.id);
  });
}

/** Parses `i/n` (0 <= i < n). */
export function parseShard(s: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) throw new Error(`shard must be i/n with 0 <= i < n, got ${JSON.stringify(s)}`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

/** Writes a file atomically: temporary name beside it, synced, renamed. */
async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = tmpName(path);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

async function readManifest(dir: string): Promise<Manifest> {
  const path = join(dir, MANIFEST);
  let m: Manifest;
  try {
    m = JSON.parse(await readFile(path, 'utf8')) as Manifest;
  } catch (e) {
    throw new Error(`${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (not a hidden-state cache)' : `unreadable (${(e as Error).message})`}`);
  }
  if (m?.format !== CACHE_FORMAT || m.version !== 1 || !Array.isArray(m.plan) || !Array.isArray(m.ids)) {
    throw new Error(`${path}: not a version-1 ${CACHE_FORMAT} manifest`);
  }
  return m;
}

/** The first field in which two manifests differ, or undefined. */
function manifestMismatch(a: Manifest, b: Manifest): string | undefined {
  const fields: Array<[string, unknown, unknown]> = [
    ['model fingerprint', a.model.fingerprint, b.model.fingerprint], ['layer', a.layer, b.layer], ['dtype', a.dtype, b.dtype],
    ['batch_size', a.batch_size, b.batch_size], ['max_tokens_per_batch', a.max_tokens_per_batch, b.max_tokens_per_batch],
    ['max_length', a.max_length, b.max_length], ['corpus (ids and texts)', a.corpus_digest, b.corpus_digest],
  ];
  const bad = fields.find(([, x, y]) => x !== y);
  return bad ? `${bad[0]}: ${JSON.stringify(bad[1])} vs ${JSON.stringify(bad[2])}` : undefined;
}

/** Ids a finished part holds (its metadata), or undefined when it is not a readable part. */
async function partIds(path: string): Promise<string[] | undefined> {
  let f: SafetensorsFile | undefined;
  try {
    f = await openSafetensors(path);
    const ids = JSON.parse(f.metadata.ids ?? 'null') as unknown;
    return Array.isArray(ids) && ids.every((x) => typeof x === 'string') ? (ids as string[]) : undefined;
  } catch {
    return undefined;
  } finally {
    await f?.close();
  }
}

const sameIds = (a: readonly string[] | undefined, b: readonly string[]): boolean => !!a && a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Runs the encoder over `texts` (this shard of the plan) and writes their hidden states to `dir`.
 * Returns the batches written now and the batches kept from an earlier, interrupted run.
 */
export async function writeHiddenCache(
  model: BgeM3, texts: readonly CacheText[], dir: string, opts: HiddenCacheOptions = {},
): Promise<{ written: number; kept: number; batches: number }> {
  checkTexts(texts);
  const L = model.config.num_hidden_layers;
  const layer = opts.layer ?? L;
  const shard = opts.shard ?? { index: 0, count: 1 };
  const limits = { batchSize: opts.batchSize ?? 16, maxTokensPerBatch: opts.maxTokensPerBatch ?? 8192 };
  const maxLength = opts.maxLength ?? 8192;
  const inputIds = model.tokenize(texts.map((t) => t.text), maxLength);
  const plan = planBatches(inputIds.map((r) => r.length), limits);
  const manifest: Manifest = {
    format: CACHE_FORMAT, version: 1,
    model: { fingerprint: modelFingerprint(model), hidden_size: model.config.hidden_size, num_hidden_layers: L },
    layer, dtype: opts.float16 ? 'F16' : 'F32',
    batch_size: limits.batchSize, max_tokens_per_batch: limits.maxTokensPerBatch, max_length: maxLength,
    texts: texts.length, corpus_digest: corpusDigest(texts), plan, ids: texts.map((t) => t.id),
  };

  const mine = plan.map((_, b) => b).filter((b) => b % shard.count === shard.index);
  const mineNames = new Set(mine.map(partName));
  await mkdir(dir, { recursive: true });
  const entries = await readdir(dir);
  if (existsSync(join(dir, MANIFEST))) {
    const old = await readManifest(dir);
    const diff = manifestMismatch(old, manifest);
    if (diff) throw new Error(`${dir} holds a different cache (${diff}); choose another directory`);
    // Other shards may be writing here too: only this shard's own parts ask for --resume.
    if (!opts.resume && entries.some((e) => mineNames.has(e))) {
      throw new Error(`${dir} already holds parts of this cache's shard ${shard.index}/${shard.count}; pass --resume to continue it`);
    }
  } else if (entries.some((e) => !e.startsWith('.'))) {
    throw new Error(`${dir} is not empty and holds no hidden-state cache; choose an empty or new directory`);
  }
  await writeAtomic(join(dir, MANIFEST), `${JSON.stringify(manifest)}\n`);
  // Leftovers of this shard's interrupted writes never count (only renamed parts are finished).
  for (const e of entries) {
    const m = /^\.(part-\d{6}\.safetensors)\.\d+\.tmp$/.exec(e);
    if (m && mineNames.has(m[1]!)) await rm(join(dir, e), { force: true });
  }

  let written = 0;
  let kept = 0;
  for (const b of mine) {
    const members = plan[b]!;
    const ids = members.map((i) => texts[i]!.id);
    const path = join(dir, partName(b));
    if (existsSync(path)) {
      if (sameIds(await partIds(path), ids)) {
        kept++;
        opts.onProgress?.(kept + written, mine.length);
        continue;
      }
      await rm(path); // unreadable or not this batch: redo it
    }
    await writePart(model, members.map((i) => inputIds[i]!), ids, b, layer, manifest.dtype, path);
    written++;
    opts.onProgress?.(kept + written, mine.length);
  }
  return { written, kept, batches: mine.length };
}

async function writePart(
  model: BgeM3, rows: number[][], ids: string[], batch: number, layer: number, dtype: 'F32' | 'F16', path: string,
): Promise<void> {
  const h = await hiddenStates(model, rows, layer); // [B, T, H], right-padded
  let data: Float32Array;
  try {
    data = (await h.data()) as Float32Array;
  } finally {
    h.dispose();
  }
  const [T, H] = [Math.max(...rows.map((r) => r.length)), model.config.hidden_size];
  const tensors: TensorToWrite[] = [];
  rows.forEach((r, b) => {
    const real = data.subarray(b * T * H, (b * T + r.length) * H); // the row's real tokens, [len, H]
    tensors.push({ name: `input_ids.${b}`, dtype: 'I32', shape: [r.length], bytes: () => new Uint8Array(Int32Array.from(r).buffer) });
    tensors.push({
      name: `hidden.${b}`, dtype, shape: [r.length, H],
      bytes: () => (dtype === 'F32' ? new Uint8Array(real.slice().buffer) : new Uint8Array(Uint16Array.from(real, toFloat16Bits).buffer)),
    });
  });
  const tmp = tmpName(path);
  await writeSafetensors(tmp, tensors, { metadata: { ids: JSON.stringify(ids), batch: String(batch), layer: String(layer) }, overwrite: true });
  const fh = await open(tmp, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/** One cached text: its token ids and hidden states, [T, H] row-major (F16 parts upcast). */
export interface CachedText {
  readonly id: string;
  readonly inputIds: number[];
  readonly hidden: Float32Array;
}

export interface HiddenCache {
  /** Ids in input order. */
  ids(): string[];
  readonly hiddenSize: number;
  readonly layer: number;
  readonly dtype: 'F32' | 'F16';
  readonly manifest: Manifest;
  get(id: string): Promise<CachedText>;
  close(): Promise<void>;
}

/** Opens a complete cache; a missing part is an error naming it and its shard count-free batch index. */
export async function openHiddenCache(dir: string): Promise<HiddenCache> {
  const manifest = await readManifest(dir);
  const where = new Map<string, { batch: number; row: number }>();
  const missing: number[] = [];
  manifest.plan.forEach((members, b) => {
    if (!existsSync(join(dir, partName(b)))) missing.push(b);
    members.forEach((i, row) => where.set(manifest.ids[i]!, { batch: b, row }));
  });
  if (missing.length > 0) {
    throw new Error(`${dir}: cache incomplete, ${missing.length} of ${manifest.plan.length} batches missing (${missing.slice(0, 5).map(partName).join(', ')}${missing.length > 5 ? ', …' : ''}); run the pass again with --resume`);
  }
  let open1: { batch: number; file: SafetensorsFile } | undefined; // the part last read: rows are usually read batch by batch
  return {
    ids: () => [...manifest.ids],
    hiddenSize: manifest.model.hidden_size,
    layer: manifest.layer,
    dtype: manifest.dtype,
    manifest,
    async get(id: string): Promise<CachedText> {
      const at = where.get(id);
      if (!at) throw new Error(`${dir}: no cached text with id ${JSON.stringify(id)}`);
      if (open1?.batch !== at.batch) {
        await open1?.file.close();
        open1 = undefined;
        const file = await openSafetensors(join(dir, partName(at.batch)));
        const ids = JSON.parse(file.metadata.ids ?? 'null') as unknown;
        if (!Array.isArray(ids) || ids[at.row] !== id) {
          await file.close();
          throw new Error(`${join(dir, partName(at.batch))}: does not hold ${JSON.stringify(id)} at row ${at.row} (not this cache's part)`);
        }
        open1 = { batch: at.batch, file };
      }
      const ids = await open1.file.readRaw(`input_ids.${at.row}`);
      const hidden = await open1.file.readFloat32(`hidden.${at.row}`);
      const inputIds = Array.from(new Int32Array(ids.bytes.slice().buffer));
      if (hidden.shape.length !== 2 || hidden.shape[0] !== inputIds.length || hidden.shape[1] !== manifest.model.hidden_size) {
        throw new Error(`${join(dir, partName(at.batch))}: hidden.${at.row} has shape ${JSON.stringify(hidden.shape)}, expected [${inputIds.length}, ${manifest.model.hidden_size}]`);
      }
      return { id, inputIds, hidden: hidden.data };
    },
    async close() {
      await open1?.file.close();
      open1 = undefined;
    },
  };
}

/**
 * Combines shard directories of one cache into `out` (created, or an existing cache of the same
 * manifest). Refuses shards of different models, layers, dtypes, limits or corpora, and a batch
 * present in two shards. Returns the number of parts copied.
 */
export async function mergeHiddenCaches(shardDirs: readonly string[], out: string): Promise<number> {
  if (shardDirs.length === 0) throw new Error('merge: no shard directories given');
  const manifests = await Promise.all(shardDirs.map(readManifest));
  manifests.forEach((m, i) => {
    const diff = manifestMismatch(manifests[0]!, m);
    if (diff) throw new Error(`merge: ${shardDirs[i]} is not a shard of the same cache as ${shardDirs[0]} (${diff})`);
  });
  const owner = new Map<string, string>();
  for (const d of shardDirs) {
    for (const e of await readdir(d)) {
      if (!/^part-\d{6}\.safetensors$/.test(e)) continue;
      const prev = owner.get(e);
      if (prev) throw new Error(`merge: ${e} is in both ${prev} and ${d} (overlapping shards)`);
      owner.set(e, d);
    }
  }
  await mkdir(out, { recursive: true });
  if (existsSync(join(out, MANIFEST))) {
    const diff = manifestMismatch(await readManifest(out), manifests[0]!);
    if (diff) throw new Error(`merge: ${out} holds a different cache (${diff})`);
  } else if ((await readdir(out)).some((e) => !e.startsWith('.'))) {
    throw new Error(`merge: ${out} is not empty and holds no hidden-state cache`);
  }
  await writeAtomic(join(out, MANIFEST), `${JSON.stringify(manifests[0])}\n`);
  let copied = 0;
  for (const [e, d] of owner) {
    const target = join(out, e);
    if (d === out) continue;
    if (existsSync(target)) throw new Error(`merge: ${target} exists already (overlapping shards)`);
    const tmp = tmpName(target);
    await copyFile(join(d, e), tmp);
    await rename(tmp, target);
    copied++;
  }
  return copied;
}
