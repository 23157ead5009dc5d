/**
 * `encoder.layer.<i>.attention.self`: multi-head scaled dot-product self-attention.
 *
 * Attention is computed in blocks of query rows: each block sees every key, so the softmax is exact,
 * and no more than [B, heads, block, T] scores exist at once (a [16, 8192, 8192] score tensor alone
 * would be 4 GB). Scores and probabilities are assembled in full only when a hook asks for them.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { XLMRobertaConfig } from '../config.js';
import { layerName } from '../hooks/names.js';
import type { HookRunner } from '../hooks/runner.js';
import { linear } from './ops.js';
import type { LayerParams } from './params.js';

export interface AttentionOptions {
  /** Query rows per block; default: the whole sequence when its scores fit the budget. */
  readonly blockSize?: number;
  /** Bytes of float32 scores one block may hold (default 64 MiB). */
  readonly scoreBudgetBytes?: number;
}

const DEFAULT_SCORE_BUDGET = 64 * 1024 * 1024;

/** Query rows per block so that B·heads·rows·T float32 scores stay within the budget. */
export function queryBlockRows(B: number, heads: number, T: number, opts: AttentionOptions = {}): number {
  if (opts.blockSize !== undefined) return Math.max(1, Math.min(T, Math.floor(opts.blockSize)));
  const budget = opts.scoreBudgetBytes ?? DEFAULT_SCORE_BUDGET;
  return Math.max(1, Math.min(T, Math.floor(budget / (4 * B * heads * T))));
}

/** [B, T, H] -> [B, heads, T, d] */
function splitHeads(x: tf.Tensor, heads: number): tf.Tensor4D {
  const [B, T, H] = x.shape as [number, number, number];
  return tf.transpose(tf.reshape(x, [B, T, heads, H / heads]), [0, 2, 1, 3]) as tf.Tensor4D;
}

/**
 * x [B, T, H], keyBias [B, 1, 1, T] (0 for real keys, −inf for padding) -> context [B, T, H]
 * (`attention.self.hook_out`).
 */
export function selfAttention(
  x: tf.Tensor3D,
  keyBias: tf.Tensor4D,
  p: LayerParams['attention']['self'],
  c: XLMRobertaConfig,
  i: number,
  hooks: HookRunner,
  opts: AttentionOptions = {},
): tf.Tensor3D {
  const [B, T, H] = x.shape;
  const heads = c.num_attention_heads;
  const d = H / heads;
  const q = hooks.point(layerName(i, 'attention.self.hook_q'), splitHeads(linear(x, p.query), heads)); // [B, heads, T, d]
  const k = hooks.point(layerName(i, 'attention.self.hook_k'), splitHeads(linear(x, p.key), heads)); // [B, heads, T, d]
  const v = hooks.point(layerName(i, 'attention.self.hook_v'), splitHeads(linear(x, p.value), heads)); // [B, heads, T, d]
  const kT = tf.transpose(k, [0, 1, 3, 2]); // [B, heads, d, T], laid out once for every block
  const scale = 1 / Math.sqrt(d);

  const wantScores = hooks.wants(layerName(i, 'attention.self.hook_scores'));
  const wantProbs = hooks.wants(layerName(i, 'attention.self.hook_probs'));
  // A hook that may edit scores or probs needs them whole; so does the cache.
  const rows = wantScores || wantProbs ? T : queryBlockRows(B, heads, T, opts);

  const blocks: tf.Tensor[] = [];
  for (let r0 = 0; r0 < T; r0 += rows) {
    const n = Math.min(rows, T - r0);
    const ctx = tf.tidy(() => {
      const qb = n === T ? q : tf.slice(q, [0, 0, r0, 0], [B, heads, n, d]); // [B, heads, n, d]
      let scores = tf.add(tf.mul(tf.matMul(qb, kT), scale), keyBias); // [B, heads, n, T]
      if (wantScores) scores = hooks.point(layerName(i, 'attention.self.hook_scores'), scores);
      let probs = tf.softmax(scores); // over keys
      if (wantProbs) probs = hooks.point(layerName(i, 'attention.self.hook_probs'), probs);
      return tf.matMul(probs, v); // [B, heads, n, d]
    });
    blocks.push(ctx);
  }
  const context = blocks.length === 1 ? blocks[0]! : tf.concat(blocks, 2); // [B, heads, T, d]
  if (blocks.length > 1) for (const b of blocks) b.dispose();
  const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [B, T, H]) as tf.Tensor3D; // heads merged back
  return hooks.point(layerName(i, 'attention.self.hook_out'), merged);
}
