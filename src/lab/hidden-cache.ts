/**
 * The hidden-state cache: one pass of the frozen encoder over a corpus, its hidden states kept on
 * disk so a head can be trained (or evaluated on another layer) without running the encoder again.
 *
 *   DIR/manifest.json                 what the cache holds (format version, model fingerprint, layer,
 *                                     dtype, encode's limits, the ids and a digest of ids and texts,
 *                                     the batch plan)
 *   DIR/part-000123.safetensors       batch 123 of the plan: per row r, `input_ids.r` [T] I32 and
 *                                     `hidden.r` [T, H] F32 or F16; metadata {"ids", "batch", "layer",
 *                                     "dtype", "model" (fingerprint), "manifest" (digest)}
 *
 * The plan is `BgeM3.encode`'s own (`planBatches` over every text, longest first), so each text
 * runs in the batch encode would run it in and its cached states are bit-identical to encode's.
 * Sharding splits that one plan: `--shard i/n` runs the batches whose index mod n == i (batches,
 * not texts, so the result does not depend on n: n shards together write exactly the files one pass
 * writes; longest-first order also spreads long batches evenly over the shards).
 *
 * Every part is tied to its manifest: its metadata names the manifest's digest, model, layer and
 * dtype, and its tensors must have the manifest's shapes and dtype; a part is checked when it is
 * opened (for reading, for a resume, for a merge), and a part of another cache is refused naming
 * the part file and the field that differs.
 *
 * Crash safety: a part is written under a temporary name and renamed once complete and synced, so a part
 * under its final name is always whole; `resume` keeps parts that check out against the manifest,
 * deletes leftover temporary files, and runs the rest. Shards run in separate directories (separate
 * machines) are combined by `mergeHiddenCaches`; shards sharing one file system may write into the
 * same directory directly.
 *
 * Reading (`openHiddenCache`) may be concurrent (training reads a step's rows with Promise.all):
 * open parts are shared through a pool with reference counts and a bound on open files, so a part
 * is never closed under a read, and every file is closed by `close()`.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { BgeM3 } from '../m3.js';
import { documentText, type BeirDoc } from './beir.js';
import { openSafetensors, writeSafetensors, type SafetensorsFile, type TensorToWrite } from '../weights/safetensors.js';
import { toFloat16Bits } from '../weights/dtype.js';
import { ENCODE_LIMITS, planBatches } from '../batches.js';
import { tempTargetName, writeFileAtomic } from '../atomic-write.js';
import { hiddenStateName, hiddenStatesData } from './hidden.js';

export const CACHE_FORMAT = 'bge-m3-tfjs hidden-state cache';
/** Version 2 ties each part to its manifest (metadata "manifest", "model", "dtype"); version 1 did not. */
export const CACHE_VERSION = 2;
const MANIFEST = 'manifest.json';

export interface CacheText {
  readonly id: string;
  readonly text: string;
}

export interface Shard {
  readonly index: number;
  readonly count: number;
}

/** What a cache is of: the model, the layer, the dtype and encode's limits (they fix the plan). */
export interface CacheSettings {
  /** hidden_states index (0 = embeddings … L = last layer, the default). */
  readonly layer?: number;
  /** Store F16 (half the disk; values rounded to nearest even); default F32 (exact). */
  readonly float16?: boolean;
  /** encode's limits (defaults 16, 8192, the model's default max length): a resume must repeat them. */
  readonly batchSize?: number;
  readonly maxTokensPerBatch?: number;
  readonly maxLength?: number;
}

export interface HiddenCacheOptions extends CacheSettings {
  /** Run only this shard of the plan (default: all of it). */
  readonly shard?: Shard;
  /** Continue a cache in `dir`: keep its finished parts. Without it an existing cache is refused. */
  readonly resume?: boolean;
  /** Called after each batch written: batches done and planned for this shard. */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface Manifest {
  readonly format: string;
  readonly version: typeof CACHE_VERSION;
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

/** Texts in several scripts whose token ids stand for the tokenizer in the fingerprint. */
const TOKENIZER_PROBE = ['What is BGE M3? Définition de BM25.', '北京是中国的首都 Москва — столица России 東京 123,456.78'];

/** Identifies the model: the config, a few small tensors and the tokenizer's ids for a probe, hashed. */
export function modelFingerprint(model: BgeM3): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(model.config));
  h.update(JSON.stringify(model.tokenize(TOKENIZER_PROBE)));
  const probe = tf.tidy(() => [
    model.params.sparse_linear.weight.dataSync(),
    model.params.sparse_linear.bias.dataSync(),
    tf.slice(model.params.embeddings.word_embeddings, [0, 0], [Math.min(8, model.config.vocab_size), -1]).dataSync(),
  ]);
  for (const a of probe) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest('hex').slice(0, 32);
}

/** sha256 (hex) of texts with their ids, in order: what identifies the texts a cache or a training run read. */
export function corpusDigest(texts: Iterable<CacheText>): string {
  const h = createHash('sha256');
  for (const t of texts) h.update(`${JSON.stringify(t.id)}\u0000${JSON.stringify(t.text)}\n`);
  return h.digest('hex');
}

/** The digest each part carries: the manifest's canonical JSON, hashed. */
function manifestDigest(m: Manifest): string {
  return createHash('sha256').update(JSON.stringify(m)).digest('hex').slice(0, 32);
}

/** The manifest a cache of `texts` with `settings` has, short of the plan (which needs the texts tokenized). */
function cacheKey(model: BgeM3, texts: readonly CacheText[], settings: CacheSettings): Omit<Manifest, 'plan'> {
  return {
    format: CACHE_FORMAT, version: CACHE_VERSION,
    model: { fingerprint: modelFingerprint(model), hidden_size: model.config.hidden_size, num_hidden_layers: model.config.num_hidden_layers },
    layer: settings.layer ?? model.config.num_hidden_layers,
    dtype: settings.float16 ? 'F16' : 'F32',
    batch_size: settings.batchSize ?? ENCODE_LIMITS.batchSize,
    max_tokens_per_batch: settings.maxTokensPerBatch ?? ENCODE_LIMITS.maxTokensPerBatch,
    max_length: settings.maxLength ?? model.defaultMaxLength,
    texts: texts.length, corpus_digest: corpusDigest(texts), ids: texts.map((t) => t.id),
  };
}

export { toFloat16Bits }; // the f16 codec lives in weights/dtype.ts

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

/** What a cache of a BEIR set's queries holds: every query, in file order. */
export const queryTexts = (queries: ReadonlyMap<string, string>): CacheText[] => [...queries].map(([id, text]) => ({ id, text }));
/** What a cache of a BEIR corpus holds: every document as `title text` (`documentText`), in file order. */
export const corpusTexts = (corpus: ReadonlyMap<string, BeirDoc>): CacheText[] => [...corpus].map(([id, d]) => ({ id, text: documentText(d) }));

/** Parses `i/n` (0 <= i < n). */
export function parseShard(s: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) throw new Error(`shard must be i/n with 0 <= i < n, got ${JSON.stringify(s)}`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

const isInt = (x: unknown, min: number): x is number => Number.isSafeInteger(x) && (x as number) >= min;

/** Reads and checks `dir/manifest.json`: every field present and consistent, or an error naming the field. */
async function readManifest(dir: string): Promise<Manifest> {
  const path = join(dir, MANIFEST);
  let m: Manifest;
  try {
    m = JSON.parse(await readFile(path, 'utf8')) as Manifest;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${path}: ${code === 'ENOENT' ? 'no such file (not a hidden-state cache)' : `unreadable (${code ?? (e as Error).message})`}`);
  }
  if (m === null || typeof m !== 'object' || m.format !== CACHE_FORMAT) throw new Error(`${path}: not a ${CACHE_FORMAT} manifest`);
  if (m.version !== CACHE_VERSION) {
    throw new Error(`${path}: cache format version ${JSON.stringify(m.version)}, this bge-m3-tfjs reads version ${CACHE_VERSION} only; rebuild the cache (bge-m3 sparse cache … --out a new directory)`);
  }
  const bad = (field: string, what: string): never => { throw new Error(`${path}: "${field}" ${what} (a damaged manifest: rebuild the cache)`); };
  const model = m.model as Partial<Manifest['model']> | undefined;
  if (model === null || typeof model !== 'object') bad('model', 'is missing');
  if (typeof model!.fingerprint !== 'string') bad('model.fingerprint', 'must be a string');
  if (!isInt(model!.hidden_size, 1)) bad('model.hidden_size', 'must be an integer >= 1');
  if (!isInt(model!.num_hidden_layers, 0)) bad('model.num_hidden_layers', 'must be an integer >= 0');
  if (!isInt(m.layer, 0) || m.layer > model!.num_hidden_layers!) bad('layer', `must be an integer in [0, ${model!.num_hidden_layers}]`);
  if (m.dtype !== 'F32' && m.dtype !== 'F16') bad('dtype', 'must be "F32" or "F16"');
  if (!isInt(m.batch_size, 1)) bad('batch_size', 'must be an integer >= 1');
  if (!isInt(m.max_tokens_per_batch, 1)) bad('max_tokens_per_batch', 'must be an integer >= 1');
  if (!isInt(m.max_length, 2)) bad('max_length', 'must be an integer >= 2');
  if (typeof m.corpus_digest !== 'string') bad('corpus_digest', 'must be a string');
  if (!Array.isArray(m.ids) || !m.ids.every((x) => typeof x === 'string' && x !== '') || new Set(m.ids).size !== m.ids.length) bad('ids', 'must be distinct non-empty strings');
  if (m.texts !== m.ids.length) bad('texts', `must equal the number of ids (${m.ids.length})`);
  const seen = new Set<number>();
  if (!Array.isArray(m.plan) || !m.plan.every((b) => Array.isArray(b) && b.length > 0 && b.every((i) => isInt(i, 0) && i < m.texts && !seen.has(i) && seen.add(i))) || seen.size !== m.texts) {
    bad('plan', 'must hold every text index exactly once, in non-empty batches');
  }
  return m;
}

/** The first field in which a cache (`have`) differs from another or from what a run asks for (`want`). */
function difference(
  have: Omit<Manifest, 'plan'>, want: Omit<Manifest, 'plan'>, opts: { dtype: boolean },
): { field: string; have: string; want: string } | undefined {
  const fields: Array<[string, unknown, unknown]> = [
    ['model fingerprint', have.model.fingerprint, want.model.fingerprint], ['layer', have.layer, want.layer],
    ...(opts.dtype ? [['dtype', have.dtype, want.dtype] as [string, unknown, unknown]] : []),
    ['batch_size', have.batch_size, want.batch_size], ['max_tokens_per_batch', have.max_tokens_per_batch, want.max_tokens_per_batch],
    ['max_length', have.max_length, want.max_length],
  ];
  const bad = fields.find(([, x, y]) => x !== y);
  if (bad) return { field: bad[0], have: JSON.stringify(bad[1]), want: JSON.stringify(bad[2]) };
  if (have.ids.length !== want.ids.length) return { field: 'corpus ids', have: `${have.ids.length} texts`, want: `${want.ids.length}` };
  const i = have.ids.findIndex((id, k) => id !== want.ids[k]);
  if (i >= 0) return { field: 'corpus ids', have: `text ${i} is ${JSON.stringify(have.ids[i])}`, want: JSON.stringify(want.ids[i]) };
  if (have.corpus_digest !== want.corpus_digest) return { field: 'corpus texts', have: have.corpus_digest.slice(0, 12), want: want.corpus_digest.slice(0, 12) };
  return undefined;
}

/** The first field in which two manifests differ (the plan last), as `field: a vs b`, or undefined. */
function manifestMismatch(a: Manifest, b: Manifest): string | undefined {
  const d = difference(a, b, { dtype: true });
  if (d) return `${d.field}: ${d.have} vs ${d.want}`;
  return manifestDigest(a) !== manifestDigest(b) ? 'plan: the batches differ (another tokenizer?)' : undefined;
}

/**
 * Why the cache `m` is not the cache of `texts` (from `source`, e.g. a corpus file) through `model`
 * with `settings`, or undefined when it is. The dtype is not compared (either serves a reader);
 * everything else fixes which states the cache holds: model, layer, limits, ids and texts.
 */
export function cacheMismatch(
  m: Manifest, model: BgeM3, texts: readonly CacheText[], settings: CacheSettings, source: string,
): string | undefined {
  const want = cacheKey(model, texts, settings);
  const d = difference(m, want, { dtype: false });
  if (!d) return undefined;
  switch (d.field) {
    case 'model fingerprint': return `model fingerprint: the cache was written by model ${d.have}, this run loaded model ${d.want}`;
    case 'layer': return `layer: the cache holds hidden_states[${d.have}], the head reads hidden_states[${d.want}]`;
    case 'corpus ids': return m.ids.length !== want.ids.length
      ? `ids: the cache holds ${m.ids.length} texts, ${source} ${want.ids.length}`
      : `ids: ${d.have} in the cache, ${d.want} in ${source}`;
    case 'corpus texts': return `corpus texts differ from ${source} (same ${m.ids.length} ids, in the same order; corpus_digest ${d.have}… in the cache, ${d.want}… now): the texts changed since the cache was written`;
    default: return `${d.field}: the cache was written with ${d.have}, this run asks for ${d.want}`;
  }
}

/**
 * Why an open part is not batch `batch` of the cache `m` (whose digest is `digest`), or undefined:
 * its metadata must name this manifest, model, layer, dtype, batch and ids, and its tensors must be
 * exactly `input_ids.r` I32 [n] and `hidden.r` [n, H] of the manifest's dtype per row.
 */
function partFault(file: SafetensorsFile, m: Manifest, digest: string, batch: number): string | undefined {
  const meta = file.metadata;
  const ids = m.plan[batch]!.map((i) => m.ids[i]!);
  const fields: Array<[string, string, boolean]> = [ // name, expected value, show quoted
    ['model', m.model.fingerprint, true], ['layer', String(m.layer), false], ['dtype', m.dtype, true], ['batch', String(batch), false],
  ];
  for (const [name, want, quoted] of fields) {
    const have = meta[name];
    if (have === undefined) return `no "${name}" in its metadata: not a part of a version-${CACHE_VERSION} cache`;
    if (have !== want) return `${name} is ${quoted ? JSON.stringify(have) : have} in this part, ${quoted ? JSON.stringify(want) : want} in the cache's manifest`;
  }
  let partIds: unknown;
  try {
    partIds = JSON.parse(meta.ids ?? 'null');
  } catch {
    partIds = null;
  }
  if (!Array.isArray(partIds) || partIds.length !== ids.length || partIds.some((x, i) => x !== ids[i])) {
    return `ids ${JSON.stringify(partIds)} in this part, the manifest's batch ${batch} holds ${JSON.stringify(ids)}`;
  }
  if (meta.manifest !== digest) return `manifest is ${JSON.stringify(meta.manifest ?? null)} in this part, the cache's manifest digest is ${JSON.stringify(digest)} (a part of another cache: corpus or limits differ)`;
  const expected = new Set(ids.flatMap((_, r) => [`input_ids.${r}`, `hidden.${r}`]));
  const stray = file.keys().find((k) => !expected.has(k));
  if (stray !== undefined) return `holds a tensor '${stray}' that batch ${batch} (${ids.length} rows) does not have`;
  for (let r = 0; r < ids.length; r++) {
    for (const name of [`input_ids.${r}`, `hidden.${r}`]) if (!file.has(name)) return `no tensor named '${name}'`;
    const t = file.info(`input_ids.${r}`);
    const h = file.info(`hidden.${r}`);
    const n = t.shape[0]!;
    if (t.dtype !== 'I32' || t.shape.length !== 1 || n < 2 || n > m.max_length) {
      return `tensor 'input_ids.${r}' is ${t.dtype} ${JSON.stringify(t.shape)}, the manifest asks for I32 [n] with 2 <= n <= ${m.max_length}`;
    }
    if (h.dtype !== m.dtype || h.shape.length !== 2 || h.shape[0] !== n || h.shape[1] !== m.model.hidden_size) {
      return `tensor 'hidden.${r}' is ${h.dtype} ${JSON.stringify(h.shape)}, the manifest asks for ${m.dtype} [${n}, ${m.model.hidden_size}]`;
    }
  }
  return undefined;
}

/** Opens part `batch` of the cache in `dir` and checks it against the manifest; an error names the file and the field. */
async function openPart(dir: string, m: Manifest, digest: string, batch: number): Promise<SafetensorsFile> {
  const path = join(dir, partName(batch));
  const file = await openSafetensors(path);
  const fault = partFault(file, m, digest, batch);
  if (fault) {
    await file.close();
    throw new Error(`${path}: ${fault}`);
  }
  return file;
}

/** Whether `path` is a whole part `batch` of the cache `m` (any fault, unreadable included: no). */
async function partChecksOut(dir: string, m: Manifest, digest: string, batch: number): Promise<boolean> {
  try {
    await (await openPart(dir, m, digest, batch)).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs the encoder over `texts` (this shard of the plan) and writes their hidden states to `dir`.
 * Returns the batches written now and the batches kept from an earlier, interrupted run.
 */
export async function writeHiddenCache(
  model: BgeM3, texts: readonly CacheText[], dir: string, opts: HiddenCacheOptions = {},
): Promise<{ written: number; kept: number; batches: number }> {
  checkTexts(texts);
  const key = cacheKey(model, texts, opts);
  hiddenStateName(key.layer, model.config.num_hidden_layers); // a bad layer fails before anything is written
  const shard = opts.shard ?? { index: 0, count: 1 };
  const inputIds = model.tokenize(texts.map((t) => t.text), key.max_length);
  const plan = planBatches(inputIds.map((r) => r.length), { batchSize: key.batch_size, maxTokensPerBatch: key.max_tokens_per_batch });
  const manifest: Manifest = { ...key, plan };
  const digest = manifestDigest(manifest);

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
  await writeFileAtomic(join(dir, MANIFEST), `${JSON.stringify(manifest)}\n`);
  // Leftovers of this shard's interrupted writes never count (only renamed parts are finished).
  for (const e of entries) {
    const target = tempTargetName(e);
    if (target !== undefined && mineNames.has(target)) await rm(join(dir, e), { force: true });
  }

  let written = 0;
  let kept = 0;
  for (const b of mine) {
    const members = plan[b]!;
    const path = join(dir, partName(b));
    if (existsSync(path)) {
      if (await partChecksOut(dir, manifest, digest, b)) {
        kept++;
        opts.onProgress?.(kept + written, mine.length);
        continue;
      }
      await rm(path); // unreadable or not this batch of this cache: redo it
    }
    await writePart(model, members.map((i) => inputIds[i]!), {
      ids: JSON.stringify(members.map((i) => texts[i]!.id)), batch: String(b), layer: String(manifest.layer),
      dtype: manifest.dtype, model: manifest.model.fingerprint, manifest: digest,
    }, manifest, path);
    written++;
    opts.onProgress?.(kept + written, mine.length);
  }
  return { written, kept, batches: mine.length };
}

async function writePart(model: BgeM3, rows: number[][], metadata: Record<string, string>, m: Manifest, path: string): Promise<void> {
  const { data, T } = await hiddenStatesData(model, rows, m.layer); // [B, T, H], right-padded
  const H = m.model.hidden_size;
  const dtype = m.dtype;
  const tensors: TensorToWrite[] = [];
  rows.forEach((r, b) => {
    const real = data.subarray(b * T * H, (b * T + r.length) * H); // the row's real tokens, [len, H]
    tensors.push({ name: `input_ids.${b}`, dtype: 'I32', shape: [r.length], bytes: () => new Uint8Array(Int32Array.from(r).buffer) });
    tensors.push({
      name: `hidden.${b}`, dtype, shape: [r.length, H],
      bytes: () => (dtype === 'F32' ? new Uint8Array(real.slice().buffer) : new Uint8Array(Uint16Array.from(real, toFloat16Bits).buffer)),
    });
  });
  await writeFileAtomic(path, (tmp) => writeSafetensors(tmp, tensors, { metadata, overwrite: true }));
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
  /** One text's states; calls may overlap (each part is opened once, checked, and shared). */
  get(id: string): Promise<CachedText>;
  /** Waits for the reads under way, then closes every open part; `get` fails afterwards. */
  close(): Promise<void>;
}

export interface OpenHiddenCacheOptions {
  /** Parts kept open at once (default 16): reads of other parts wait for one to be released. */
  readonly maxOpenFiles?: number;
}

/**
 * Open parts shared by overlapping reads: a part is opened (and checked) once, counted while reads
 * use it, and closed only when no read does: when a slot is needed for another part (least
 * recently used first) or by `close`. At most `limit` files are open.
 */
class PartPool {
  private readonly slots = new Map<number, { file: Promise<SafetensorsFile>; users: number; failed: boolean }>();
  private waiters: Array<() => void> = [];
  private closing = 0; // evicted files not yet closed: they still count against the limit
  private pending = 0; // use() calls not finished
  private closed = false;

  constructor(private readonly openPart: (batch: number) => Promise<SafetensorsFile>, private readonly limit: number, private readonly name: string) {}

  /** Runs `read` on part `batch`, opened (and checked) once and shared by overlapping calls. */
  async use<T>(batch: number, read: (file: SafetensorsFile) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error(`${this.name}: the cache is closed`);
    this.pending++; // counted from the call on: close() waits for it
    try {
      const slot = await this.acquire(batch);
      try {
        return await read(await slot.file);
      } finally {
        slot.users--;
        if (slot.users === 0 && slot.failed && this.slots.get(batch) === slot) this.slots.delete(batch); // the next read tries again
      }
    } finally {
      this.pending--;
      this.wake();
    }
  }

  private async acquire(batch: number): Promise<{ file: Promise<SafetensorsFile>; users: number; failed: boolean }> {
    for (;;) {
      const have = this.slots.get(batch);
      if (have) {
        have.users++;
        this.slots.delete(batch); // re-inserted last: the map's order is least recently used first
        this.slots.set(batch, have);
        return have;
      }
      if (this.slots.size + this.closing < this.limit) break;
      const idle = [...this.slots].find(([, s]) => s.users === 0);
      if (idle) {
        this.slots.delete(idle[0]);
        this.closing++;
        try {
          await closeQuietly(idle[1].file);
        } finally {
          this.closing--;
        }
      } else {
        await new Promise<void>((resolve) => this.waiters.push(resolve));
      }
    }
    const slot = { file: this.openPart(batch), users: 1, failed: false };
    slot.file.catch(() => { slot.failed = true; });
    this.slots.set(batch, slot);
    return slot;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Refuses new reads, waits for the ones under way, closes every file. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.pending > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
    const all = [...this.slots.values()];
    this.slots.clear();
    await Promise.all(all.map((s) => closeQuietly(s.file)));
  }
}

async function closeQuietly(file: Promise<SafetensorsFile>): Promise<void> {
  let f: SafetensorsFile;
  try {
    f = await file;
  } catch {
    return; // never opened
  }
  await f.close();
}

/** Opens a complete cache; a missing part is an error naming it and its shard count-free batch index. */
export async function openHiddenCache(dir: string, opts: OpenHiddenCacheOptions = {}): Promise<HiddenCache> {
  const limit = opts.maxOpenFiles ?? 16;
  if (!isInt(limit, 1)) throw new RangeError(`maxOpenFiles must be an integer >= 1, got ${JSON.stringify(limit)}`);
  const manifest = await readManifest(dir);
  const digest = manifestDigest(manifest);
  const where = new Map<string, { batch: number; row: number }>();
  const missing: number[] = [];
  manifest.plan.forEach((members, b) => {
    if (!existsSync(join(dir, partName(b)))) missing.push(b);
    members.forEach((i, row) => where.set(manifest.ids[i]!, { batch: b, row }));
  });
  if (missing.length > 0) {
    throw new Error(`${dir}: cache incomplete, ${missing.length} of ${manifest.plan.length} batches missing (${missing.slice(0, 5).map(partName).join(', ')}${missing.length > 5 ? ', …' : ''}); run the pass again with --resume`);
  }
  const pool = new PartPool((b) => openPart(dir, manifest, digest, b), limit, dir);
  return {
    ids: () => [...manifest.ids],
    hiddenSize: manifest.model.hidden_size,
    layer: manifest.layer,
    dtype: manifest.dtype,
    manifest,
    async get(id: string): Promise<CachedText> {
      const at = where.get(id);
      if (!at) throw new Error(`${dir}: no cached text with id ${JSON.stringify(id)}`);
      return pool.use(at.batch, async (file) => {
        const ids = await file.readRaw(`input_ids.${at.row}`);
        const hidden = await file.readFloat32(`hidden.${at.row}`); // shapes checked when the part was opened
        return { id, inputIds: Array.from(new Int32Array(ids.bytes.slice().buffer)), hidden: hidden.data };
      });
    },
    close: () => pool.close(),
  };
}

/**
 * Combines shard directories of one cache into `out` (created, or an existing cache of the same
 * manifest). Refuses shards of different models, layers, dtypes, limits or corpora, a part that is
 * not its manifest's, and a batch present in two shards. Returns the number of parts copied.
 */
export async function mergeHiddenCaches(shardDirs: readonly string[], out: string): Promise<number> {
  if (shardDirs.length === 0) throw new Error('merge: no shard directories given');
  const manifests = await Promise.all(shardDirs.map(readManifest));
  manifests.forEach((m, i) => {
    const diff = manifestMismatch(manifests[0]!, m);
    if (diff) throw new Error(`merge: ${shardDirs[i]} is not a shard of the same cache as ${shardDirs[0]} (${diff})`);
  });
  const manifest = manifests[0]!;
  const digest = manifestDigest(manifest);
  const owner = new Map<string, string>();
  for (const d of shardDirs) {
    for (const e of await readdir(d)) {
      if (!/^part-\d{6}\.safetensors$/.test(e)) continue;
      const prev = owner.get(e);
      if (prev) throw new Error(`merge: ${e} is in both ${prev} and ${d} (overlapping shards)`);
      const batch = Number(e.slice(5, 11));
      if (batch >= manifest.plan.length) throw new Error(`merge: ${join(d, e)}: the plan has ${manifest.plan.length} batches, no batch ${batch}`);
      try {
        await (await openPart(d, manifest, digest, batch)).close();
      } catch (err) {
        throw new Error(`merge: ${(err as Error).message}`);
      }
      owner.set(e, d);
    }
  }
  await mkdir(out, { recursive: true });
  if (existsSync(join(out, MANIFEST))) {
    const diff = manifestMismatch(await readManifest(out), manifest);
    if (diff) throw new Error(`merge: ${out} holds a different cache (${diff})`);
  } else if ((await readdir(out)).some((e) => !e.startsWith('.'))) {
    throw new Error(`merge: ${out} is not empty and holds no hidden-state cache`);
  }
  await writeFileAtomic(join(out, MANIFEST), `${JSON.stringify(manifest)}\n`);
  let copied = 0;
  for (const [e, d] of owner) {
    const target = join(out, e);
    if (d === out) continue;
    if (existsSync(target)) throw new Error(`merge: ${target} exists already (overlapping shards)`);
    await writeFileAtomic(target, (tmp) => copyFile(join(d, e), tmp), { replace: false });
    copied++;
  }
  return copied;
}

/**
 * Empties a folder that holds a hidden-state cache (`sparse cache --force`): after checking that it is
 * one — a manifest of this format (any version), and nothing but the manifest, parts and their interrupted writes —
 * deletes those files and keeps the (now empty) folder. Anything else in the folder is refused, naming
 * it, and then nothing is deleted. A missing or empty folder is left as it is.
 */
export async function clearHiddenCache(dir: string): Promise<number> {
  if (!existsSync(dir)) return 0;
  const entries = await readdir(dir);
  if (entries.length === 0) return 0;
  if (!existsSync(join(dir, MANIFEST))) throw new Error(`${dir} is not a hidden-state cache (no ${MANIFEST}); nothing was deleted`);
  // Only the format is checked: a cache of another format version, or with a damaged field, is still ours to replace.
  let format: unknown;
  try {
    format = (JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as { format?: unknown } | null)?.format;
  } catch (e) {
    throw new Error(`${join(dir, MANIFEST)}: unreadable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}), so ${dir} cannot be told to be a hidden-state cache; nothing was deleted`);
  }
  if (format !== CACHE_FORMAT) throw new Error(`${join(dir, MANIFEST)} is not a ${CACHE_FORMAT} manifest; nothing was deleted`);
  const cacheFile = (e: string): boolean => e === MANIFEST || /^part-\d{6}\.safetensors$/.test(e);
  const ours = (e: string): boolean => cacheFile(e) || cacheFile(tempTargetName(e) ?? '');
  const stranger = entries.find((e) => !ours(e));
  if (stranger !== undefined) throw new Error(`${dir} holds ${stranger}, which is not part of a hidden-state cache; nothing was deleted`);
  // The manifest last: an interrupted clear still reads as a (partial) cache, so --force can finish it.
  for (const e of entries.filter((x) => x !== MANIFEST)) await rm(join(dir, e));
  await rm(join(dir, MANIFEST));
  return entries.length;
}
