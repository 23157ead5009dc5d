/**
 * BGE-M3's ColBERT head, whole: FlagEmbedding's `BGEM3Model.colbert_embedding`, normalisation and
 * `_process_colbert_vecs`.
 *
 *   c = colbert_linear(h[:, 1:])              drop <s>                      colbert_linear.hook_out  [B, T−1, C]
 *   v = normalize(c · mask[:, 1:]) per row    padding -> zero vectors        colbert_head.hook_out    [B, T−1, C]
 *   a text's vectors: its first (real tokens − 1) rows of v, `</s>` included
 */
import * as tf from '@tensorflow/tfjs-core';
import type { HookRunner } from '../hooks/runner.js';
import { l2normalize, linear } from '../model/ops.js';
import type { Linear } from '../model/params.js';
import type { ColbertVecs } from '../scores.js';

/** h [B, T, H], mask [B, T] (1 real, 0 padding) -> [B, T−1, C] */
export function colbertHead(h: tf.Tensor3D, mask: tf.Tensor2D, p: Linear, hooks: HookRunner): tf.Tensor3D {
  const [B, T, H] = h.shape;
  const tokens = tf.slice(h, [0, 1, 0], [B, T - 1, H]); // drop <s>: [B, T−1, H]
  const c = hooks.point('colbert_linear.hook_out', linear(tokens, p) as tf.Tensor3D); // [B, T−1, C]
  const m = tf.expandDims(tf.slice(mask, [0, 1], [B, T - 1]), -1); // [B, T−1, 1]
  return hooks.point('colbert_head.hook_out', l2normalize(tf.mul(c, m)) as tf.Tensor3D);
}

/**
 * ColBERT vector i of a text belongs to token position i + 1: BGE-M3 drops `<s>` before `colbert_linear`
 * and keeps the rest (`</s>` included).
 */
export const colbertPosition = (vectorIndex: number): number => vectorIndex + 1;

/**
 * One text's ColBERT vectors from row b of the head's output (host data of [B, T−1, C]): its first
 * (real tokens − 1) vectors; the rest are padding.
 */
export function colbertVecs(head: Float32Array, b: number, T: number, C: number, realTokens: number): ColbertVecs {
  const first = b * (T - 1) * C;
  return { rows: realTokens - 1, dim: C, data: head.slice(first, first + (realTokens - 1) * C) };
}
