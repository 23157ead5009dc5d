/**
 * BGE-M3's three heads on the encoder output h [B, T, H], with FlagEmbedding's semantics
 * (`BGEM3Model.dense_embedding` / `sparse_embedding` / `colbert_embedding` + normalisation).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { HookRunner } from '../hooks/runner.js';
import { l2normalize, linear } from '../model/ops.js';
import type { Linear } from '../model/params.js';

/** `dense_head`: the L2-normalised CLS (`<s>`) vector. h [B, T, H] -> [B, H] */
export function denseHead(h: tf.Tensor3D, hooks: HookRunner): tf.Tensor2D {
  const [B, , H] = h.shape;
  const cls = tf.reshape(tf.slice(h, [0, 0, 0], [B, 1, H]), [B, H]);
  return hooks.point('dense_head.hook_out', l2normalize(cls) as tf.Tensor2D);
}

/** `sparse_head`: per-token weights relu(sparse_linear(h)). h [B, T, H] -> [B, T] */
export function sparseHead(h: tf.Tensor3D, p: Linear, hooks: HookRunner): tf.Tensor2D {
  const [B, T] = h.shape;
  const s = hooks.point('sparse_linear.hook_out', linear(h, p) as tf.Tensor3D); // [B, T, 1]
  return hooks.point('sparse_head.hook_out', tf.reshape(tf.relu(s), [B, T]) as tf.Tensor2D);
}

/**
 * `colbert_head`: normalise(colbert_linear(h[:, 1:]) · mask[:, 1:]) per row.
 * h [B, T, H], mask [B, T] -> [B, T−1, C]; padded rows come out as zero vectors.
 */
export function colbertHead(h: tf.Tensor3D, mask: tf.Tensor2D, p: Linear, hooks: HookRunner): tf.Tensor3D {
  const [B, T, H] = h.shape;
  const tokens = tf.slice(h, [0, 1, 0], [B, T - 1, H]); // drop <s>: [B, T−1, H]
  const c = hooks.point('colbert_linear.hook_out', linear(tokens, p) as tf.Tensor3D); // [B, T−1, C]
  const m = tf.expandDims(tf.slice(mask, [0, 1], [B, T - 1]), -1); // [B, T−1, 1]
  return hooks.point('colbert_head.hook_out', l2normalize(tf.mul(c, m)) as tf.Tensor3D);
}
