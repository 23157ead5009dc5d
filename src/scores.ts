/** FlagEmbedding's scores between BGE-M3 outputs (`BGEM3FlagModel.compute_*` / `colbert_score`). */
import * as tf from '@tensorflow/tfjs-core';
import { tensorsOnGpu } from './backend.js';

/** Lexical weights: token id (as a decimal string) -> weight, as FlagEmbedding returns them. */
export type LexicalWeights = Record<string, number>;

/** One text's ColBERT vectors: `rows` vectors of `dim` floats, row-major. */
export interface ColbertVecs {
  readonly rows: number;
  readonly dim: number;
  readonly data: Float32Array;
}

export function denseScore(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`denseScore: vectors have ${a.length} and ${b.length} dimensions`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Σ over token ids present in both of w_a · w_b. */
export function lexicalMatchingScore(a: LexicalWeights, b: LexicalWeights): number {
  let s = 0;
  for (const [id, w] of Object.entries(a)) {
    const v = b[id];
    if (v !== undefined) s += w * v;
  }
  return s;
}

/**
 * Every query vector's dot product with every passage vector, [q.rows, p.rows] row-major: ColBERT's
 * similarity matrix. On a backend whose tensors live in host memory (wasm, cpu, tensorflow) one float32
 * matMul; on a GPU backend (webgpu, webgl) plain loops here instead, because reading a GPU tensor
 * back synchronously stalls the page (and on some adapters loses the device) for a product this small.
 */
export function colbertSimilarity(q: ColbertVecs, p: ColbertVecs, what = 'colbertSimilarity'): Float32Array {
  if (q.dim !== p.dim) throw new Error(`${what}: query vectors have ${q.dim} dimensions, passage vectors ${p.dim}`);
  const [R, C, D] = [q.rows, p.rows, q.dim];
  if (R === 0 || C === 0) return new Float32Array(0);
  if (!tensorsOnGpu()) {
    return tf.tidy(() => {
      const qm = tf.tensor2d(q.data, [R, D]);
      const pmT = tf.transpose(tf.tensor2d(p.data, [C, D])); // [D, C]
      return tf.matMul(qm, pmT).dataSync() as Float32Array; // [R, C]
    });
  }
  return hostSimilarity(q, p);
}

/** The same matrix by plain loops (float64 sums, rounded to float32). */
export function hostSimilarity(q: ColbertVecs, p: ColbertVecs): Float32Array {
  const [R, C, D] = [q.rows, p.rows, q.dim];
  const out = new Float32Array(R * C);
  for (let i = 0; i < R; i++) {
    const a = q.data.subarray(i * D, (i + 1) * D);
    for (let j = 0; j < C; j++) out[i * C + j] = denseScore(a, p.data.subarray(j * D, (j + 1) * D));
  }
  return out;
}

/** Mean over the query's vectors of the best dot product with any passage vector (max-sim). */
export function colbertScore(q: ColbertVecs, p: ColbertVecs): number {
  const sim = colbertSimilarity(q, p, 'colbertScore'); // [q, p]
  if (sim.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < q.rows; i++) {
    let best = -Infinity;
    for (let j = 0; j < p.rows; j++) best = Math.max(best, sim[i * p.rows + j]!);
    sum += best;
  }
  return sum / q.rows;
}

/** Weights for dense, sparse and ColBERT in the combined scores (FlagEmbedding's default: 1, 1, 1). */
export type ModeWeights = readonly [number, number, number];

export interface ScoreSet<T> {
  dense: T;
  sparse: T;
  colbert: T;
  'sparse+dense': T;
  'colbert+sparse+dense': T;
}

/**
 * Validates the mode weights. They are the weights of a weighted average, so each must be finite and
 * non-negative (mixed signs could make the divisor vanish or flip the meaning of a score), and each
 * average needs a positive total: dense + sparse for `sparse+dense`, all three for `colbert+sparse+dense`.
 */
export function checkModeWeights(w: readonly number[], arg = 'weightsForDifferentModes'): ModeWeights {
  if (!Array.isArray(w) || w.length !== 3 || !w.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new Error(`${arg} must be three finite numbers (dense, sparse, colbert), got ${JSON.stringify(w)}`);
  }
  if (w.some((x) => x < 0)) throw new Error(`${arg} ${JSON.stringify(w)}: weights must not be negative (they weight an average)`);
  if (w[0]! + w[1]! === 0 || w[0]! + w[1]! + w[2]! === 0) throw new Error(`${arg} ${JSON.stringify(w)}: the weights being averaged sum to 0`);
  return [w[0]!, w[1]!, w[2]!];
}

/**
 * Σ wᵢ·xᵢ / Σ wᵢ with the weights first divided by the largest of them: the average is unchanged, but
 * weights like 1e308 no longer overflow to Infinity (and give NaN), and the largest weight is 1, so
 * the divisor cannot underflow to 0 either.
 */
function weightedAverage(w: readonly number[], x: readonly number[]): number {
  const top = Math.max(...w); // > 0: checkModeWeights refuses negative weights and zero sums
  let num = 0;
  let den = 0;
  w.forEach((wi, i) => { num += (wi / top) * x[i]!; den += wi / top; });
  return num / den;
}

/**
 * Combines the three scores of one pair as FlagEmbedding's compute_score does:
 * (w0·dense + w1·sparse) / (w0 + w1) and (w0·dense + w1·sparse + w2·colbert) / (w0 + w1 + w2).
 */
export function combineScores(dense: number, sparse: number, colbert: number, weights: ModeWeights): ScoreSet<number> {
  const w = checkModeWeights(weights);
  return {
    dense,
    sparse,
    colbert,
    'sparse+dense': weightedAverage([w[0], w[1]], [dense, sparse]),
    'colbert+sparse+dense': weightedAverage(w, [dense, sparse, colbert]),
  };
}

/** The outputs scoreMatrices needs: all three, as `BgeM3.encode` returns them. */
export interface AllOutputs {
  denseVecs?: Float32Array[];
  lexicalWeights?: LexicalWeights[];
  colbertVecs?: ColbertVecs[];
}

/** queries × passages matrices of every score FlagEmbedding's compute_score gives. */
export function scoreMatrices(q: AllOutputs, p: AllOutputs, w: ModeWeights): ScoreSet<number[][]> {
  if (!q.denseVecs || !q.lexicalWeights || !q.colbertVecs || !p.denseVecs || !p.lexicalWeights || !p.colbertVecs) {
    throw new Error('scoreMatrices needs dense, sparse and ColBERT outputs for queries and passages');
  }
  const out: ScoreSet<number[][]> = { dense: [], sparse: [], colbert: [], 'sparse+dense': [], 'colbert+sparse+dense': [] };
  q.denseVecs.forEach((qd, i) => {
    const rows: ScoreSet<number[]> = { dense: [], sparse: [], colbert: [], 'sparse+dense': [], 'colbert+sparse+dense': [] };
    p.denseVecs!.forEach((pd, j) => {
      const s = combineScores(denseScore(qd, pd), lexicalMatchingScore(q.lexicalWeights![i]!, p.lexicalWeights![j]!),
        colbertScore(q.colbertVecs![i]!, p.colbertVecs![j]!), w);
      for (const k of Object.keys(rows) as Array<keyof ScoreSet<number>>) rows[k].push(s[k]);
    });
    for (const k of Object.keys(out) as Array<keyof ScoreSet<number>>) out[k].push(rows[k]);
  });
  return out;
}
