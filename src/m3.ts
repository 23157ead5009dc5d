/**
 * `BgeM3`: load a snapshot, encode texts into BGE-M3's three outputs, score pairs, and look inside.
 * Mirrors FlagEmbedding's `BGEM3FlagModel` (encode / compute_score / convert_id_to_token).
 */
import * as tf from '@tensorflow/tfjs-core';
import './tfjs-api.js'; // hooks get tensors with tfjs's chained methods; tf.grad works on them
import { attribute, type AttributeOptions, type Attribution } from './attribution/attribute.js';
import { useBackend, type BackendName } from './backend.js';
import { ENCODE_LIMITS, padBatch, planBatches } from './batches.js';
import { maxInputTokens, type XLMRobertaConfig } from './config.js';
import { checkFormulation, runEncoder, type Formulation } from './run-encoder.js';
import { colbertHead, colbertVecs } from './heads/colbert.js';
import { denseHead } from './heads/dense.js';
import { batchLexicalWeights, lexicalWeights, sparseHead, unusedTokenIds } from './heads/sparse.js';
import { ActivationCache } from './hooks/cache.js';
import { checkActivationName, type ActivationName } from './hooks/names.js';
import { HookRunner, NO_HOOKS, type HookFn, type NameFilter } from './hooks/runner.js';
import type { FastOptions } from './model/fast/ops.js';
import { buildParams, disposeParams, expectedShapes, type M3Params } from './model/params.js';
import { weightSource, type WeightLoadStats } from './runtime/heap-load.js';
import {
  checkModeWeights, colbertScore, combineScores, denseScore, lexicalMatchingScore,
  type ColbertVecs, type LexicalWeights, type ScoreSet,
} from './scores.js';
import { M3Tokenizer } from './tokenizer.js';
import { assertHeadWeights, checkOutputsFinite, weightFile } from './weights/finite.js';
import { openSnapshot } from './weights/snapshot.js';
import { countingFolder, filesFolder, type ModelFolder } from './weights/folder.js';
import type { UrlSourceOptions } from './weights/source.js';
import { openModelFolder } from './host/model-folder.js';

export interface LoadOptions {
  backend?: BackendName;
  /** wasm backend: matMul threads (default: the cores Node may use; see `useBackend`). */
  threads?: number;
  /** Called with load warnings (unexpected checkpoint keys); default: console.warn. */
  onWarning?: (message: string) => void;
  /** Called as weight bytes are read: bytes so far and the total of the weight files opened so far. */
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
  /** For a folder URL: the `fetch` to use (a caching one: see `cachingFetch`) and extra request headers. */
  fetch?: UrlSourceOptions['fetch'];
  headers?: UrlSourceOptions['headers'];
  /** For a folder URL: seconds a request may receive nothing before it is given up as stalled (default 60). */
  stallSeconds?: UrlSourceOptions['stallSeconds'];
}

/** Where a model is loaded from: see `BgeM3.load`. */
export type ModelLocation = string | ModelFolder | ReadonlyArray<Blob & { readonly name: string }>;

export interface EncodeOptions extends RunOptions {
  /**
   * Texts per forward pass. FlagEmbedding defaults to 256, sized for a GPU; on a 2-core CPU a
   * bigger batch buys no speed and costs memory, so the default is 16.
   */
  batchSize?: number;
  /**
   * Most tokens (rows × padded length) in one forward pass, default 8192: with BGE-M3's sizes one
   * [tokens, 4096] float32 intermediate is then 128 MiB. A longer single text still runs alone.
   */
  maxTokensPerBatch?: number;
  /**
   * Truncate each text to this many tokens, `<s>` and `</s>` included (default 8192, FlagEmbedding's,
   * or the model's own limit `BgeM3.maxLength` when that is smaller).
   */
  maxLength?: number;
  returnDense?: boolean; // default true
  returnSparse?: boolean; // default false, as FlagEmbedding
  returnColbert?: boolean; // default false, as FlagEmbedding
  /**
   * Called after each batch with the number of texts done; encode awaits a returned promise, and a
   * throw stops it (the CLI uses both to stop cleanly on Ctrl-C between batches).
   */
  onProgress?: (done: number, total: number) => void | Promise<void>;
}

/** How the encoder runs; outputs do not depend on it beyond float32 rounding (tests hold them equal). */
export interface RunOptions {
  /**
   * Which op set the one layer (src/model/layer.ts) runs with. `'fast'` (default, src/model/fast/ops.ts):
   * the relaxed-SIMD kernel's Linears, row ops and attention job (XNNPACK and a blocked attention where
   * the kernel cannot run), never a head's whole [T, T] scores, so 8192 tokens fit. `'reference'`: the
   * plain tf ops, every head's [T, T] scores at once through batched matMuls: several times slower on
   * wasm and O(heads·T²) memory; the one to read, step through, or compare against.
   */
  forward?: Formulation;
  /** Knobs of the fast op set: blocked attention (block size, score budget, row groups), row chunks, hooked heads. */
  fast?: FastOptions;
}

export interface EncodeOutput {
  /** Token ids of each text after truncation. */
  inputIds: number[][];
  denseVecs?: Float32Array[];
  lexicalWeights?: LexicalWeights[];
  colbertVecs?: ColbertVecs[];
}

export interface ScoreOptions {
  batchSize?: number;
  maxQueryLength?: number; // default 512, as FlagEmbedding
  maxPassageLength?: number; // default 8192 (or the model's limit when smaller)
  weightsForDifferentModes?: readonly number[]; // [dense, sparse, colbert], default [1, 1, 1]
}

const DEFAULTS = { ...ENCODE_LIMITS, maxLength: 8192 } as const;

/** Texts, or token ids already made (each `<s> … </s>`, as `tokenize` returns them). */
export type Inputs = string[] | { readonly inputIds: readonly (readonly number[])[] };

function checkTexts(texts: unknown, arg = 'texts'): string[] {
  if (!Array.isArray(texts)) throw new TypeError(`${arg} must be an array of strings, got ${texts === null ? 'null' : typeof texts}`);
  texts.forEach((t, i) => {
    if (typeof t !== 'string') throw new TypeError(`${arg}[${i}] must be a string, got ${t === null ? 'null' : typeof t}`);
  });
  return texts as string[];
}

/**
 * Every id the tokenizer can produce must have a row in the embedding table (config.json's vocab_size);
 * a larger table than the tokenizer needs is harmless (its extra rows are never looked up).
 */
function checkVocabulary(tokenizer: M3Tokenizer, config: XLMRobertaConfig, configFile: string): void {
  if (tokenizer.vocabSize > config.vocab_size) {
    throw new Error(`${configFile}: vocab_size is ${config.vocab_size} but the tokenizer has ${tokenizer.vocabSize} ids `
      + `(0 … ${tokenizer.vocabSize - 1}): ids from ${config.vocab_size} up would index past the embedding table; `
      + 'the tokenizer files and the weights do not belong together');
  }
}

function checkInt(v: unknown, arg: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${arg} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  }
  return v;
}

/** The formulation and its knobs, validated, with the defaults filled in. */
function checkRunOptions(opts: RunOptions): Required<RunOptions> {
  if ('attention' in opts) throw new TypeError("the 'attention' option was replaced by forward: 'reference' | 'fast' and fast: { blockSize, … }");
  const fast = opts.fast ?? {};
  if (typeof fast !== 'object' || fast === null) throw new TypeError(`fast must be an object of fast-path options, got ${JSON.stringify(fast)}`);
  return { forward: checkFormulation(opts.forward ?? 'fast'), fast };
}

export class BgeM3 {
  private disposed = false;

  protected constructor(
    readonly config: XLMRobertaConfig,
    readonly tokenizer: M3Tokenizer,
    /** The weights as tensors, in the Hugging Face key tree (read them; do not dispose them). */
    readonly params: M3Params,
    /** Files the weights came from. */
    readonly files: Readonly<Record<string, string>>,
    /** How the weights reached backend memory: straight from the files (wasm) or through host arrays, and why. */
    readonly weightLoad?: WeightLoadStats,
  ) {}

  /**
   * Loads a model folder (see `openSnapshot` for the files it reads): in Node a directory, a repo id in
   * the Hugging Face cache (`BAAI/bge-m3[@rev]`) or a folder URL ending in `/`; in a browser a folder
   * URL (absolute or relative to the page); in both, File objects (a picked folder) or a `ModelFolder`.
   */
  static async load(where: ModelLocation, opts: LoadOptions = {}): Promise<BgeM3> {
    let folder = typeof where === 'string'
      ? await openModelFolder(where, { fetch: opts.fetch, headers: opts.headers, stallSeconds: opts.stallSeconds })
      : Array.isArray(where) ? filesFolder(where) : where as ModelFolder;
    await useBackend(opts.backend ?? 'wasm', { threads: opts.threads });
    let total = 0;
    let done = 0;
    if (opts.onProgress) {
      const report = opts.onProgress;
      folder = countingFolder(folder, (bytes, size) => {
        if (size !== undefined) total += size;
        else report((done = Math.min(total, done + bytes)), total); // header and directory reads overlap tensor reads
      });
    }
    const tokenizer = await M3Tokenizer.fromFolder(folder);
    const snap = await openSnapshot(folder, expectedShapes);
    try {
      if (snap.unexpectedKeys.length > 0) {
        (opts.onWarning ?? console.warn)(`${snap.files.encoder}: ${snap.unexpectedKeys.length} tensors are not used by BGE-M3: ${snap.unexpectedKeys.slice(0, 5).join(', ')}${snap.unexpectedKeys.length > 5 ? ', …' : ''}`);
      }
      checkVocabulary(tokenizer, snap.config, folder.path('config.json'));
      // On wasm, F32 tensors go from the open files (path, URL or File) straight into the heap.
      const source = weightSource(snap);
      const params = await buildParams(snap.config, snap.colbertDim, source);
      try {
        // The ReLU turns a NaN of the sparse head into a silent 0 that no output check sees: scan its
        // H + 1 values now (non-finite or absurdly large ones are refused, naming the file).
        const s = params.sparse_linear;
        await assertHeadWeights(snap.files.sparse_linear, [['sparse_linear.weight', s.weight], ['sparse_linear.bias', s.bias]]);
      } catch (e) {
        disposeParams(params);
        throw e;
      }
      if (opts.onProgress && done < total) opts.onProgress((done = total), total);
      return new BgeM3(snap.config, tokenizer, params, snap.files, source.stats());
    } finally {
      await snap.close();
    }
  }

  private alive(): void {
    if (this.disposed) throw new Error('this BgeM3 model has been disposed');
  }

  /** Largest maxLength this model accepts (8192 for BGE-M3: the position table's size). */
  get maxLength(): number {
    return maxInputTokens(this.config);
  }

  /** Truncation length used when none is given: 8192 (FlagEmbedding's), or `maxLength` when smaller. */
  get defaultMaxLength(): number {
    return Math.min(DEFAULTS.maxLength, this.maxLength);
  }

  /** Tokenizes with truncation; validates the text list and maxLength. */
  tokenize(texts: string[], maxLength: number = this.defaultMaxLength, arg = 'texts'): number[][] {
    checkTexts(texts, arg);
    checkInt(maxLength, 'maxLength', 2, this.maxLength);
    return texts.map((t) => this.tokenizer.tokenize(t, { maxLength }).inputIds);
  }

  /** Token ids of the inputs: texts are tokenized, given ids are checked against the vocabulary and length limit. */
  private inputIds(inputs: Inputs, maxLength: number = this.defaultMaxLength): number[][] {
    if (Array.isArray(inputs)) return this.tokenize(inputs, maxLength);
    if (!inputs || typeof inputs !== 'object' || !Array.isArray(inputs.inputIds)) {
      throw new TypeError('inputs must be an array of strings or { inputIds: number[][] }');
    }
    checkInt(maxLength, 'maxLength', 2, this.maxLength);
    return inputs.inputIds.map((row, i) => {
      if (!Array.isArray(row) || row.length < 2 || row.length > maxLength) {
        throw new RangeError(`inputIds[${i}] must be an array of 2 to ${maxLength} ids (maxLength), got ${Array.isArray(row) ? `${row.length} ids` : typeof row}`);
      }
      row.forEach((id, j) => {
        if (!Number.isInteger(id) || id < 0 || id >= this.config.vocab_size) {
          throw new RangeError(`inputIds[${i}][${j}] = ${JSON.stringify(id)} is not a token id in [0, ${this.config.vocab_size})`);
        }
      });
      return [...row];
    });
  }

  /**
   * Encodes texts as FlagEmbedding's `BGEM3FlagModel.encode`: texts are sorted by length, batched,
   * run, and returned in input order. The outputs of a text do not depend on its batch.
   */
  async encode(inputs: Inputs, opts: EncodeOptions = {}): Promise<EncodeOutput> {
    this.alive();
    const batchSize = checkInt(opts.batchSize ?? DEFAULTS.batchSize, 'batchSize', 1);
    const budget = checkInt(opts.maxTokensPerBatch ?? DEFAULTS.maxTokensPerBatch, 'maxTokensPerBatch', 1);
    const want = { dense: opts.returnDense ?? true, sparse: opts.returnSparse ?? false, colbert: opts.returnColbert ?? false };
    const run = checkRunOptions(opts);
    const ids = this.inputIds(inputs, opts.maxLength);
    const out: EncodeOutput = { inputIds: ids };
    if (want.dense) out.denseVecs = new Array(ids.length);
    if (want.sparse) out.lexicalWeights = new Array(ids.length);
    if (want.colbert) out.colbertVecs = new Array(ids.length);

    // Longest first, as FlagEmbedding; each batch takes texts while it stays within the limits (src/batches.ts).
    let done = 0;
    for (const members of planBatches(ids.map((r) => r.length), { batchSize, maxTokensPerBatch: budget })) {
      const result = await this.forward(members.map((i) => ids[i]!), want, NO_HOOKS, run);
      members.forEach((textIndex, row) => {
        if (out.denseVecs) out.denseVecs[textIndex] = result.dense![row]!;
        if (out.lexicalWeights) out.lexicalWeights[textIndex] = result.lexical![row]!;
        if (out.colbertVecs) out.colbertVecs[textIndex] = result.colbert![row]!;
      });
      done += members.length;
      await opts.onProgress?.(done, ids.length);
    }
    return out;
  }

  /**
   * One padded batch through the encoder and the wanted heads; returns host arrays per row.
   * Every tensor made here is disposed before it returns.
   */
  private async forward(
    rows: number[][],
    want: { dense: boolean; sparse: boolean; colbert: boolean },
    hooks: HookRunner,
    run: Required<RunOptions>,
  ): Promise<{ dense?: Float32Array[]; lexical?: LexicalWeights[]; colbert?: ColbertVecs[] }> {
    const batch = padBatch(rows, this.config.pad_token_id);
    const [B, T] = [rows.length, batch.inputIds[0]!.length];
    const h = runEncoder(batch, this.params, this.config, hooks, run.forward, run.fast); // [B, T, H]
    let heads;
    try {
      heads = tf.tidy(() => {
        const mask = tf.tensor2d(batch.attentionMask.map((r) => [...r]), [B, T], 'float32');
        return {
          dense: want.dense ? denseHead(h, hooks) : undefined, // [B, H]
          sparse: want.sparse ? sparseHead(h, this.params.sparse_linear, hooks) : undefined, // [B, T]
          // Σh: the sparse head's ReLU would turn a NaN hidden state into 0, so its input is checked too.
          sparseInput: want.sparse ? tf.reshape(tf.sum(h), [1]) : undefined, // [1]
          colbert: want.colbert ? colbertHead(h, mask, this.params.colbert_linear, hooks) : undefined, // [B, T−1, C]
        };
      });
    } finally {
      h.dispose();
    }
    try {
      const result: { dense?: Float32Array[]; lexical?: LexicalWeights[]; colbert?: ColbertVecs[] } = {};
      const raw: Record<string, Float32Array> = {}; // every head's values, checked for NaN/Infinity below
      if (heads.dense) {
        const H = heads.dense.shape[1];
        const d = (raw.dense = (await heads.dense.data()) as Float32Array);
        result.dense = rows.map((_, b) => d.slice(b * H, (b + 1) * H));
      }
      if (heads.sparse) {
        raw['sparse head input'] = (await heads.sparseInput!.data()) as Float32Array;
        const w = (raw.sparse = (await heads.sparse.data()) as Float32Array);
        const unused = unusedTokenIds(this.tokenizer);
        result.lexical = batchLexicalWeights(rows, w, T, unused);
      }
      if (heads.colbert) {
        const C = heads.colbert.shape[2];
        const c = (raw.colbert = (await heads.colbert.data()) as Float32Array);
        result.colbert = rows.map((r, b) => colbertVecs(c, b, T, C, r.length));
      }
      // NaN would print as null and empty every lexical weight: refuse, naming the non-finite weight.
      await checkOutputsFinite(raw, this.params, (name) => weightFile(this.files, name));
      return result;
    } finally {
      tf.dispose([heads.dense, heads.sparse, heads.sparseInput, heads.colbert].filter((x): x is tf.Tensor => x !== undefined));
    }
  }

  /**
   * Lexical weights of one text from its per-token weights: per token id the largest weight over its
   * occurrences, dropping `<s>`, `</s>`, `<pad>`, `<unk>` and weights <= 0 (`_process_token_weights`).
   */
  lexicalWeights(inputIds: readonly number[], tokenWeights: ArrayLike<number>): LexicalWeights {
    return lexicalWeights(inputIds, tokenWeights, unusedTokenIds(this.tokenizer));
  }

  /** Token text -> weight, like FlagEmbedding's `convert_id_to_token` (one dict per input dict). */
  convertIdToToken(lexicalWeights: LexicalWeights): Record<string, number>;
  convertIdToToken(lexicalWeights: LexicalWeights[]): Record<string, number>[];
  convertIdToToken(lw: LexicalWeights | LexicalWeights[]): Record<string, number> | Record<string, number>[] {
    const one = (x: LexicalWeights): Record<string, number> => {
      const r: Record<string, number> = {};
      for (const [id, w] of Object.entries(x)) r[this.tokenizer.decodeId(Number(id))] = w;
      return r;
    };
    return Array.isArray(lw) ? lw.map(one) : one(lw);
  }

  denseScore(a: Float32Array, b: Float32Array): number {
    return denseScore(a, b);
  }

  computeLexicalMatchingScore(a: LexicalWeights, b: LexicalWeights): number {
    return lexicalMatchingScore(a, b);
  }

  colbertScore(q: ColbertVecs, p: ColbertVecs): number {
    return colbertScore(q, p);
  }

  /**
   * Scores of each (query, passage) pair as FlagEmbedding's `compute_score`: dense, sparse, ColBERT and
   * the weighted combinations. ColBERT's max-sim runs over each passage's own real tokens.
   */
  async computeScore(pairs: Array<[string, string]>, opts: ScoreOptions = {}): Promise<ScoreSet<number[]>> {
    if (!Array.isArray(pairs) || !pairs.every((p) => Array.isArray(p) && p.length === 2)) {
      throw new TypeError('pairs must be an array of [query, passage] string pairs');
    }
    const w = checkModeWeights(opts.weightsForDifferentModes ?? [1, 1, 1]);
    const all = { returnDense: true, returnSparse: true, returnColbert: true, batchSize: opts.batchSize };
    const q = await this.encode(checkTexts(pairs.map((p) => p[0]), 'queries'), { ...all, maxLength: opts.maxQueryLength ?? Math.min(512, this.maxLength) });
    const p = await this.encode(checkTexts(pairs.map((x) => x[1]), 'passages'), { ...all, maxLength: opts.maxPassageLength ?? this.defaultMaxLength });
    const out: ScoreSet<number[]> = { dense: [], sparse: [], colbert: [], 'sparse+dense': [], 'colbert+sparse+dense': [] };
    pairs.forEach((_, i) => {
      const s = combineScores(
        denseScore(q.denseVecs![i]!, p.denseVecs![i]!),
        lexicalMatchingScore(q.lexicalWeights![i]!, p.lexicalWeights![i]!),
        colbertScore(q.colbertVecs![i]!, p.colbertVecs![i]!),
        w,
      );
      for (const k of Object.keys(out) as Array<keyof typeof out>) out[k].push(s[k]);
    });
    return out;
  }

  /**
   * Runs the texts as one right-padded batch (input order) and caches the activations the filter
   * selects (all of them when none is given). The caller disposes the cache.
   */
  async runWithCache(
    inputs: Inputs,
    opts: RunOptions & { names?: NameFilter; maxLength?: number; hooks?: Partial<Record<ActivationName, HookFn | HookFn[]>> } = {},
  ): Promise<{ output: EncodeOutput; cache: ActivationCache }> {
    if (Array.isArray(opts.names)) for (const n of opts.names) checkActivationName(n, this.config.num_hidden_layers);
    for (const n of Object.keys(opts.hooks ?? {})) checkActivationName(n, this.config.num_hidden_layers);
    // hooks (as runWithHooks's) edit activations as they pass; the cache holds the edited ones
    const runner = new HookRunner({ cache: opts.names ?? (() => true), hooks: opts.hooks });
    const output = await this.runBatch(inputs, runner, opts.maxLength, checkRunOptions(opts));
    return { output, cache: new ActivationCache(runner.cache, padBatch(output.inputIds, this.config.pad_token_id), this.config.num_hidden_layers) };
  }

  /**
   * Runs the texts as one right-padded batch with hooks that read or replace activations; edits flow
   * on to the outputs (all three are returned).
   */
  async runWithHooks(
    inputs: Inputs,
    hooks: Partial<Record<ActivationName, HookFn | HookFn[]>>,
    opts: RunOptions & { maxLength?: number } = {},
  ): Promise<EncodeOutput> {
    for (const n of Object.keys(hooks)) checkActivationName(n, this.config.num_hidden_layers);
    return this.runBatch(inputs, new HookRunner({ hooks }), opts.maxLength, checkRunOptions(opts));
  }

  private async runBatch(inputs: Inputs, runner: HookRunner, maxLength: number | undefined, run: Required<RunOptions>): Promise<EncodeOutput> {
    this.alive();
    const ids = this.inputIds(inputs, maxLength);
    if (ids.length === 0) throw new RangeError('inputs must not be empty');
    try {
      const r = await this.forward(ids, { dense: true, sparse: true, colbert: true }, runner, run);
      return { inputIds: ids, denseVecs: r.dense!, lexicalWeights: r.lexical!, colbertVecs: r.colbert! };
    } catch (e) {
      for (const t of runner.cache.values()) t.dispose();
      throw e;
    }
  }

  /**
   * Where a token's lexical weight (`text` a string, `target` a token of it) or a pair's dense or
   * lexical score (`text` a [query, passage] pair, `target` 'dense' or 'lexical') comes from: its
   * attribution to heads, attention blocks, MLPs, residual positions (attribution patching) and input
   * tokens (integrated gradients), through the reference forward. See src/attribution/attribute.ts.
   */
  async attribute(text: string | [string, string], opts: AttributeOptions): Promise<Attribution> {
    this.alive();
    return attribute(this, text, opts);
  }

  /** Frees the weights. The model cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    disposeParams(this.params);
    this.disposed = true;
  }
}
