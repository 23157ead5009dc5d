/**
 * `encoder.layer.<i>.attention.self`: multi-head scaled dot-product self-attention, as the textbook
 * writes it: every head at once, every score materialised.
 *
 *   q, k, v = x·Wqᵀ + bq, x·Wkᵀ + bk, x·Wvᵀ + bv     split into heads of d = H / heads features
 *   scores  = q·kᵀ / √d + keyBias                     keyBias: 0 for real keys, −inf for padding
 *   probs   = softmax(scores) over the keys
 *   context = probs·v                                 heads merged back
 *
 * The fast path (fast/attention.ts) computes the same function in blocks; tests hold the two equal.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { XLMRobertaConfig } from '../config.js';
import { layerName } from '../hooks/names.js';
import type { HookRunner } from '../hooks/runner.js';
import { linear } from './ops.js';
import type { LayerParams } from './params.js';

/** [B, T, H] -> [B, heads, T, d]: head j is features j·d … (j+1)·d − 1. */
export function splitHeads(x: tf.Tensor, heads: number): tf.Tensor4D {
  const [B, T, H] = x.shape as [number, number, number];
  return tf.transpose(tf.reshape(x, [B, T, heads, H / heads]), [0, 2, 1, 3]) as tf.Tensor4D;
}

/** [B, heads, T, d] -> [B, T, H]: the inverse of `splitHeads`. */
export function mergeHeads(x: tf.Tensor4D): tf.Tensor3D {
  const [B, heads, T, d] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B, T, heads * d]) as tf.Tensor3D;
}

/** x [B, T, H], keyBias [B, 1, 1, T] -> context [B, T, H] (`attention.self.hook_out`). */
export function selfAttention(
  x: tf.Tensor3D,
  keyBias: tf.Tensor4D,
  p: LayerParams['attention']['self'],
  c: XLMRobertaConfig,
  i: number,
  hooks: HookRunner,
): tf.Tensor3D {
  const heads = c.num_attention_heads;
  const d = c.hidden_size / heads;
  const at = (site: Parameters<typeof layerName>[1]) => layerName(i, site);
  const context = tf.tidy(() => {
    const q = hooks.point(at('attention.self.hook_q'), splitHeads(linear(x, p.query), heads)); // [B, heads, T, d]
    const k = hooks.point(at('attention.self.hook_k'), splitHeads(linear(x, p.key), heads)); // [B, heads, T, d]
    const v = hooks.point(at('attention.self.hook_v'), splitHeads(linear(x, p.value), heads)); // [B, heads, T, d]
    const qk = tf.matMul(q, k, false, true); // [B, heads, T, T]: query rows, key columns
    const scores = hooks.point(at('attention.self.hook_scores'), tf.add(tf.mul(qk, 1 / Math.sqrt(d)), keyBias));
    const probs = hooks.point(at('attention.self.hook_probs'), tf.softmax(scores)); // over the keys (last axis)
    return mergeHeads(tf.matMul(probs, v)); // [B, heads, T, d] -> [B, T, H]
  });
  return hooks.point(at('attention.self.hook_out'), context);
}
