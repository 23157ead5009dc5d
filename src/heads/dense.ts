/** BGE-M3's dense head (FlagEmbedding's `BGEM3Model.dense_embedding` + normalisation). */
import * as tf from '@tensorflow/tfjs-core';
import type { HookRunner } from '../hooks/runner.js';
import { l2normalize } from '../model/ops.js';

/** The L2-normalised CLS (`<s>`) vector. h [B, T, H] -> [B, H] (`dense_head.hook_out`) */
export function denseHead(h: tf.Tensor3D, hooks: HookRunner): tf.Tensor2D {
  const [B, , H] = h.shape;
  const cls = tf.reshape(tf.slice(h, [0, 0, 0], [B, 1, H]), [B, H]); // position 0 of every row
  return hooks.point('dense_head.hook_out', l2normalize(cls) as tf.Tensor2D);
}
