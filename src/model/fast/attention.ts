/**
 * The fast op set's attention core where the kernel's attention job cannot run (no relaxed SIMD, or
 * no heap room for its scratch) or where the caller set `blockSize` / `groupTokens`: the same
 * function, softmax(q·kᵀ/√d + keyBias)·v, as 2-D matMuls per head (what XNNPACK runs fast; batched
 * matMuls fall back to a scalar loop on the wasm backend) on blocks of query rows. Each block sees
 * every key, so the softmax is exact, and no more than one block of one head's scores exists at a time
 * (a [16, 8192, 8192] score tensor alone would be 4 GiB). Short rows are attended several at a time
 * under a block mask (see `attentionGroups`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { kernelMatMul } from '../../kernels/index.js';
import { sliceRows } from '../../runtime/heap-ops.js';

/** The knobs of the blocked attention; results do not depend on them (tests hold every setting to the reference). */
export interface BlockOptions {
  /** Query rows per block; default: as many as `scoreBudgetBytes` allows (the whole sequence up to ~2900 tokens). */
  readonly blockSize?: number;
  /** Bytes the scores and probabilities of one block of one head may hold (default 64 MiB). */
  readonly scoreBudgetBytes?: number;
  /** Batch rows shorter than this many tokens are attended together (see `attentionGroups`; default 128). */
  readonly groupTokens?: number;
}

const DEFAULT_SCORE_BUDGET = 64 * 1024 * 1024;
const DEFAULT_GROUP_TOKENS = 128;

/** Query rows per block so that one head's scores and probabilities (2 · rows · T float32) fit the budget. */
export function queryBlockRows(T: number, opts: BlockOptions = {}): number {
  if (opts.blockSize !== undefined) return Math.max(1, Math.min(T, Math.floor(opts.blockSize)));
  const budget = opts.scoreBudgetBytes ?? DEFAULT_SCORE_BUDGET;
  return Math.max(1, Math.min(T, Math.floor(budget / (8 * T))));
}

/** Batch rows attended together: the rows [first, first + count) of the batch. */
interface Group { first: number; count: number }

/**
 * Short rows are attended G at a time: one [G·T, G·T] score matrix per head whose off-diagonal row
 * blocks are masked to −inf. That wastes G× the (small) attention FLOPs but replaces G × heads tiny
 * matMuls with heads bigger ones; per-op overhead dominates below ~128 tokens.
 */
export function attentionGroups(B: number, T: number, opts: BlockOptions = {}): Group[] {
  const G = Math.max(1, Math.min(B, Math.floor((opts.groupTokens ?? DEFAULT_GROUP_TOKENS) / T)));
  const groups: Group[] = [];
  for (let b = 0; b < B; b += G) groups.push({ first: b, count: Math.min(G, B - b) });
  return groups;
}

/**
 * The key bias of one group: for one batch row its keyBias row (null when it is all 0), for several
 * a [G·T, G·T] matrix that also masks keys of the other rows with −inf. Made from host values (the
 * fused matMul wants a bias whose storage is rank 1).
 */
function groupBias(kb: Float32Array, g: Group, T: number): tf.Tensor1D | tf.Tensor2D | null {
  if (g.count === 1) {
    const row = kb.subarray(g.first * T, (g.first + 1) * T);
    return row.some((v) => v !== 0) ? tf.tensor1d(row, 'float32') : null;
  }
  const W = g.count * T;
  const m = new Float32Array(W * W).fill(-Infinity);
  for (let r = 0; r < g.count; r++) {
    const keys = kb.subarray((g.first + r) * T, (g.first + r + 1) * T);
    for (let i = r * T; i < (r + 1) * T; i++) m.set(keys, i * W + r * T);
  }
  return tf.tensor2d(m, [W, W], 'float32');
}

/** a·b, plus `bias` on every row when given ([M, K]·[K, N] + [N]); on the kernel where it runs. */
function matMulBias(a: tf.Tensor2D, b: tf.Tensor2D, bias: tf.Tensor1D | null): tf.Tensor2D {
  const k = kernelMatMul(a, b, bias ? { bias } : {});
  if (k) return k;
  return bias ? (tf.fused.matMul({ a, b, bias }) as tf.Tensor2D) : tf.matMul(a, b);
}

/** softmax(q·kᵀ + bias)·v for q [m, d] (already scaled), kᵀ [d, W], v [W, d], bias [W] or [m, W]: [m, d]. */
function attend(q: tf.Tensor2D, kT: tf.Tensor2D, v: tf.Tensor2D, bias: tf.Tensor1D | tf.Tensor2D | null, softmax: (x: tf.Tensor2D) => tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    let scores: tf.Tensor2D;
    if (bias === null || bias.rank === 1) scores = matMulBias(q, kT, bias as tf.Tensor1D | null);
    else {
      const s = tf.matMul(q, kT);
      scores = tf.add(s, bias);
      s.dispose(); // at most the scores and the probabilities at a time: the budget of queryBlockRows
    }
    const probs = softmax(scores);
    scores.dispose();
    return matMulBias(probs, v, null);
  });
}

/** Rows [from, from + n) of a 2-D tensor (all rows: the tensor itself). */
const rows = (t: tf.Tensor2D, from: number, n: number): tf.Tensor2D => (from === 0 && n === t.shape[0] ? t : sliceRows(t, from, n));
/** Columns [from, from + n) of a small 2-D tensor (all columns: the tensor itself). */
const cols = (t: tf.Tensor2D, from: number, n: number): tf.Tensor2D => (from === 0 && n === t.shape[1] ? t : tf.slice(t, [0, from], [t.shape[0], n]));

/**
 * softmax(q·kᵀ/√d + keyBias)·v per head for token-major q, k, v [B, T, heads·d] and keyBias
 * [B, 1, 1, T]: [B, T, heads·d]. Per group of rows and head, blocks of query rows.
 */
export function blockedAttention(
  q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, keyBias: tf.Tensor4D, heads: number,
  softmax: (x: tf.Tensor2D) => tf.Tensor2D, opts: BlockOptions = {},
): tf.Tensor3D {
  const [B, T, H] = q.shape;
  const d = H / heads;
  const N = B * T;
  return tf.tidy(() => {
    // [B, T, heads·d] -> [heads·N, d]: head h's token rows in rows h·N …
    const byHead = (t: tf.Tensor3D) => tf.reshape(tf.transpose(tf.reshape(t, [N, heads, d]), [1, 0, 2]), [heads * N, d]) as tf.Tensor2D;
    const qh = tf.mul(byHead(q), 1 / Math.sqrt(d)) as tf.Tensor2D; // scaled once here
    const kT = tf.transpose(tf.reshape(k, [N, H])) as tf.Tensor2D; // [H, N]: head h's kᵀ in rows h·d …
    const vh = byHead(v);
    const kb = keyBias.dataSync() as Float32Array; // [B·T] host copy (tiny)
    const groups = attentionGroups(B, T, opts);
    const biases = groups.map((g) => groupBias(kb, g, T));
    const perHead: tf.Tensor[] = [];
    for (let h = 0; h < heads; h++) {
      perHead.push(tf.tidy(() => {
        const kTh = sliceRows(kT, h * d, d); // [d, N]
        const pieces: tf.Tensor[] = [];
        groups.forEach((g, gi) => {
          const W = g.count * T;
          const first = g.first * T;
          const kTg = cols(kTh, first, W);
          const vg = sliceRows(vh, h * N + first, W);
          const n = queryBlockRows(W, opts);
          const bias = biases[gi]!;
          for (let r0 = 0; r0 < W; r0 += n) {
            const m = Math.min(n, W - r0);
            pieces.push(attend(sliceRows(qh, h * N + first + r0, m), kTg, vg, bias && bias.rank === 2 ? rows(bias as tf.Tensor2D, r0, m) : bias, softmax));
          }
        });
        return pieces.length === 1 ? pieces[0]! : tf.concat(pieces, 0); // [N, d]
      }));
    }
    return tf.reshape(tf.concat(perHead, 1), [B, T, H]) as tf.Tensor3D; // heads merged back, token-major
  });
}
