/**
 * The data behind the inspection page: for each text its tokens with sparse weights, every layer's
 * attention probabilities and per-layer hidden-state norms; for a (query, passage) pair the three scores,
 * the lexical-match breakdown and the ColBERT alignment.
 *
 * Attention is the bulk: layers × heads × T² probabilities (for BGE-M3 and a 512-token passage, 100 M
 * floats). Each probability p is stored as one byte round(255·√p) (the square root keeps resolution for
 * the small probabilities that dominate long inputs: p = 1/512 is byte 11, not 0), one gzip blob per layer
 * ([heads, T, T] row-major), base64 in the page; the page gunzips a layer when it is shown.
 */
import * as tf from '@tensorflow/tfjs-core';
import { kernelStatus } from '../kernels/index.js';
import {
  explainColbert, explainLexicalMatch, tokenWeightsOf, type LexicalMatchExplanation, type TokenWeight,
} from '../explain.js';
import { attribute, type Attribution } from '../attribution/attribute.js';
import { layerName, type ActivationName } from '../hooks/names.js';
import type { HookFn } from '../hooks/runner.js';
import { createTrainableHead } from '../lab/heads/registry.js';
import { sparseLens, type SparseLens } from '../lab/lens.js';
import type { BgeM3, EncodeOutput } from '../m3.js';
import { colbertScore, combineScores, denseScore, lexicalMatchingScore, type ScoreSet } from '../scores.js';

export const REPORT_FORMAT = 'bge-m3-inspect/1';

/** How an array of bytes is stored: gzip, then base64. */
export type Blob64 = string;

export interface ReportText {
  role: 'query' | 'passage';
  text: string;
  /** Tokens of the whole text before truncation to `maxLength`. */
  fullLength: number;
  tokens: TokenWeight[];
  attention: {
    /** Byte b stands for the probability (b / 255)². */
    encoding: 'sqrt-u8';
    heads: number;
    length: number;
    /** The encoder layers stored (all by default), ascending. */
    layerIds: number[];
    /** One per entry of layerIds: gzip of [heads, T, T] bytes (row = query position, column = key position), base64. */
    layers: Blob64[];
  };
  /**
   * L2 norm of the hidden state of each token, mean and max over the text's tokens: index 0 is
   * `embeddings.hook_out`, index i + 1 is `encoder.layer.i.hook_out`.
   */
  norms: { mean: number[]; max: number[] };
}

export interface ReportPair {
  /** dense, sparse and ColBERT scores and their combinations with weights [1, 1, 1]. */
  scores: ScoreSet<number>;
  lexical: LexicalMatchExplanation;
  colbert: {
    score: number;
    queryRows: number;
    passageRows: number;
    /** Query vector i (token position i + 1) matched passage vector passageIndex (token passageIndex + 1). */
    matches: Array<{ queryIndex: number; passageIndex: number; similarity: number }>;
    /** Byte b stands for the similarity b / 127.5 − 1; [queryRows, passageRows] row-major, gzip, base64. */
    encoding: 'linear-u8';
    similarity: Blob64;
  };
}

/** Several passages against one query: each one's scores; `texts[1]` and `pair` detail `passages.texts[selected]`. */
export interface ReportPassages {
  texts: string[];
  /** Tokens of each passage before truncation to `maxLength`, and after (`<s>` and `</s>` included). */
  fullLengths: number[];
  lengths: number[];
  /** Against the query, as `pair.scores` (the selected passage's are `pair.scores`). */
  scores: ScoreSet<number>[];
  selected: number;
}

export interface InspectReport {
  format: typeof REPORT_FORMAT;
  model: { name: string; layers: number; heads: number; hiddenSize: number; backend: string };
  maxLength: number;
  texts: ReportText[];
  pair?: ReportPair;
  /** With several passages (`buildReport` given a list): every passage's scores. */
  passages?: ReportPassages;
  /** With `BuildReportOptions.lens`: the sparse lens of each text, in the order of `texts`. */
  lens?: SparseLens[];
  /**
   * With `BuildReportOptions.attribute`: where the query token's lexical weight, or the pair's dense or
   * lexical score, comes from (`m3.attribute`).
   */
  attribution?: Attribution;
  createdAt: string;
}

export interface BuildReportOptions {
  /** Truncate each text to this many tokens, `<s>` and `</s>` included (default 512, or the model's own smaller limit). */
  maxLength?: number;
  /** Shown in the page header (default 'model'). */
  modelName?: string;
  /** Encoder layers whose attention the page stores (default: all); the rest of the page is unchanged. */
  layers?: readonly number[];
  /**
   * A sparse head (`m3`, `m3-log1p`, `splade`) to run as a sparse lens on every hidden state of each text:
   * the page then shows a layers × tokens heatmap of its weights (src/lab/lens.ts). Default: none.
   */
  lens?: string;
  /**
   * A token of the query (a piece such as `▁retrieval`, or the bare word) whose lexical weight the page
   * attributes to layers, attention heads, MLPs and input tokens (src/attribution/), or `{ score }`: the
   * query–passage dense or lexical score, attributed over both texts (needs a passage). Default: none.
   */
  attribute?: string | { score: 'dense' | 'lexical' };
  /** With several passages: the one the detailed views (tokens, lexical match, ColBERT, attention …) show (default 0). */
  selected?: number;
  /**
   * Hooks (as `m3.runWithHooks`'s) every run of the report goes through (texts, pair, lens), e.g. a head
   * ablated with `ablateHead`: the page then shows the edited model. Not applied to `attribute`.
   */
  hooks?: Partial<Record<ActivationName, HookFn | HookFn[]>>;
}

export const DEFAULT_MAX_LENGTH = 512;

/**
 * gzip (CompressionStream: in Node ≥ 18 and in browsers, so the report can be built in a page), then
 * base64 (btoa over chunks of bytes: no Buffer).
 */
async function pack(bytes: Uint8Array<ArrayBuffer>): Promise<Blob64> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream('gzip'));
  const gz = new Uint8Array(await new Response(stream).arrayBuffer());
  let bin = '';
  for (let i = 0; i < gz.length; i += 0x8000) bin += String.fromCharCode(...gz.subarray(i, i + 0x8000));
  return btoa(bin);
}

// Reads are asynchronous (`data()`, not `dataSync()`): on the webgpu backend a synchronous read goes
// through OffscreenCanvas contexts, and in headless Chromium (SwiftShader) the device is then destroyed.

/** Probabilities [H, T, T] as bytes round(255·√p). */
async function quantizeProbs(p: tf.Tensor): Promise<Uint8Array<ArrayBuffer>> {
  const q = tf.tidy(() => tf.cast(tf.round(tf.mul(tf.sqrt(tf.clipByValue(p, 0, 1)), 255)), 'int32'));
  try {
    return Uint8Array.from(await q.data() as Int32Array);
  } finally {
    q.dispose();
  }
}

/** Similarities in [−1, 1] as bytes round((s + 1)·127.5). */
function quantizeSimilarity(s: Float32Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = Math.round((Math.min(1, Math.max(-1, s[i]!)) + 1) * 127.5);
  return out;
}

/** Mean and max over tokens of the L2 norm of each row of x [1, T, H]. */
async function normStats(x: tf.Tensor): Promise<{ mean: number; max: number }> {
  const t = tf.tidy(() => tf.sqrt(tf.sum(tf.square(x), -1))); // [1, T]
  const n = await t.data() as Float32Array;
  t.dispose();
  let [sum, max] = [0, 0];
  for (const v of n) {
    sum += v;
    max = Math.max(max, v);
  }
  return { mean: sum / n.length, max };
}

/** Runs one text and collects its tokens, attention and norms from one `runWithCache`. */
async function inspectText(m3: BgeM3, role: ReportText['role'], text: string, maxLength: number, layerIds: number[], hooks: BuildReportOptions['hooks']) {
  const L = m3.config.num_hidden_layers;
  const names: ActivationName[] = ['embeddings.hook_out', 'sparse_head.hook_out'];
  for (let i = 0; i < L; i++) names.push(layerName(i, 'hook_out'));
  for (const i of layerIds) names.push(layerName(i, 'attention.self.hook_probs'));
  const fullLength = m3.tokenize([text], m3.maxLength)[0]!.length;
  const { output, cache } = await m3.runWithCache([text], { names, maxLength, hooks });
  try {
    const ids = output.inputIds[0]!;
    const weights = await cache.get('sparse_head.hook_out').data() as Float32Array; // [1, T]
    const hidden = [cache.get('embeddings.hook_out'), ...Array.from({ length: L }, (_, i) => cache.get(layerName(i, 'hook_out')))];
    const stats = await Promise.all(hidden.map(normStats));
    const layers = await Promise.all(layerIds.map(async (i) => pack(await quantizeProbs(cache.get(layerName(i, 'attention.self.hook_probs')))))); // [1, heads, T, T]
    const report: ReportText = {
      role,
      text,
      fullLength,
      tokens: tokenWeightsOf(m3.tokenizer, ids, weights),
      attention: { encoding: 'sqrt-u8', heads: m3.config.num_attention_heads, length: ids.length, layerIds, layers },
      norms: { mean: stats.map((s) => s.mean), max: stats.map((s) => s.max) },
    };
    return { report, output };
  } finally {
    cache.dispose();
  }
}

/** The three scores of a query's and a passage's outputs (one text each), combined with weights [1, 1, 1]. */
function scoresOf(q: EncodeOutput, p: EncodeOutput): ScoreSet<number> {
  return combineScores(
    denseScore(q.denseVecs![0]!, p.denseVecs![0]!),
    lexicalMatchingScore(q.lexicalWeights![0]!, p.lexicalWeights![0]!),
    colbertScore(q.colbertVecs![0]!, p.colbertVecs![0]!),
    [1, 1, 1],
  );
}

async function pairOf(m3: BgeM3, q: EncodeOutput, p: EncodeOutput): Promise<ReportPair> {
  const [ql, pl] = [q.lexicalWeights![0]!, p.lexicalWeights![0]!];
  const colbert = explainColbert(q.colbertVecs![0]!, p.colbertVecs![0]!);
  return {
    scores: scoresOf(q, p),
    lexical: explainLexicalMatch(m3, ql, pl),
    colbert: {
      score: colbert.score,
      queryRows: colbert.queryRows,
      passageRows: colbert.passageRows,
      matches: colbert.matches,
      encoding: 'linear-u8',
      similarity: await pack(quantizeSimilarity(colbert.similarity)),
    },
  };
}

/** The passages of `buildReport`'s argument, checked: none, or a non-empty list of strings. */
function passageList(passage: string | readonly string[] | undefined): string[] {
  if (passage === undefined) return [];
  const list = typeof passage === 'string' ? [passage] : passage;
  if (!Array.isArray(list) || list.length === 0) throw new TypeError('passage must be a string or a non-empty list of strings');
  list.forEach((t, i) => {
    if (typeof t !== 'string') throw new TypeError(`passage ${i} must be a string, got ${t === null ? 'null' : typeof t}`);
  });
  return [...list];
}

/** Every passage's scores against the query: the selected one's from its detailed run, the others run here (with the hooks). */
async function passagesOf(m3: BgeM3, q: EncodeOutput, texts: string[], selected: number, detail: EncodeOutput,
  maxLength: number, hooks: BuildReportOptions['hooks']): Promise<ReportPassages> {
  const scores: ScoreSet<number>[] = [];
  const lengths: number[] = [];
  for (const [i, text] of texts.entries()) {
    const p = i === selected ? detail : await m3.runWithHooks([text], hooks ?? {}, { maxLength });
    scores.push(scoresOf(q, p));
    lengths.push(p.inputIds[0]!.length);
  }
  return { texts, fullLengths: texts.map((t) => m3.tokenize([t], m3.maxLength)[0]!.length), lengths, scores, selected };
}

/**
 * Builds the page data for a query and, optionally, a passage or several: with a list, every passage
 * is scored and the detailed views show `opts.selected`'s.
 */
export async function buildReport(m3: BgeM3, query: string, passage?: string | readonly string[], opts: BuildReportOptions = {}): Promise<InspectReport> {
  const maxLength = opts.maxLength ?? Math.min(DEFAULT_MAX_LENGTH, m3.maxLength);
  const passages = passageList(passage);
  const selected = opts.selected ?? 0;
  if (!Number.isInteger(selected) || selected < 0 || selected >= Math.max(1, passages.length)) {
    throw new RangeError(`selected must be the index of a passage in [0, ${Math.max(1, passages.length) - 1}], got ${JSON.stringify(opts.selected)}`);
  }
  const detail = passages[selected];
  const score = typeof opts.attribute === 'object' ? opts.attribute.score : undefined;
  if (typeof opts.attribute === 'object' && score !== 'dense' && score !== 'lexical') {
    throw new RangeError(`attribute.score must be 'dense' or 'lexical', got ${JSON.stringify(score)}`);
  }
  if (score !== undefined && detail === undefined) throw new RangeError(`attribute: the ${score} score needs a passage`);
  const L = m3.config.num_hidden_layers;
  const layerIds = opts.layers === undefined ? Array.from({ length: L }, (_, i) => i) : [...new Set(opts.layers)].sort((a, b) => a - b);
  const bad = layerIds.find((i) => !Number.isInteger(i) || i < 0 || i >= L);
  if (bad !== undefined || layerIds.length === 0) throw new RangeError(`layers must be a non-empty list of layer indices in [0, ${L - 1}], got ${JSON.stringify(opts.layers)}`);
  const q = await inspectText(m3, 'query', query, maxLength, layerIds, opts.hooks);
  const p = detail === undefined ? undefined : await inspectText(m3, 'passage', detail, maxLength, layerIds, opts.hooks);
  let lens: SparseLens[] | undefined;
  if (opts.lens !== undefined) {
    const head = createTrainableHead(opts.lens, m3);
    try {
      lens = [];
      for (const text of detail === undefined ? [query] : [query, detail]) lens.push(await sparseLens(m3, head, text, { maxLength, hooks: opts.hooks }));
    } finally {
      head.dispose();
    }
  }
  const attribution = opts.attribute === undefined ? undefined
    : score !== undefined ? await attribute(m3, [query, detail!], { target: score, maxLength })
      : await attribute(m3, query, { target: opts.attribute as string, maxLength });
  return {
    format: REPORT_FORMAT,
    model: {
      name: opts.modelName ?? 'model',
      layers: m3.config.num_hidden_layers,
      heads: m3.config.num_attention_heads,
      hiddenSize: m3.config.hidden_size,
      // which matMul path ran (the FMA kernel of src/kernels, or XNNPACK and why), shown in the page header
      backend: tf.getBackend() === 'wasm' ? `wasm (matMul: ${kernelStatus().path})` : tf.getBackend(),
    },
    maxLength,
    texts: p ? [q.report, p.report] : [q.report],
    pair: p ? await pairOf(m3, q.output, p.output) : undefined,
    ...(p && passages.length > 1 ? { passages: await passagesOf(m3, q.output, passages, selected, p.output, maxLength, opts.hooks) } : {}),
    ...(lens ? { lens } : {}),
    ...(attribution ? { attribution } : {}),
    createdAt: new Date().toISOString(),
  };
}
