/** `embeddings`: word + position + token-type embeddings, then LayerNorm. */
import * as tf from '@tensorflow/tfjs-core';
import type { XLMRobertaConfig } from '../config.js';
import type { HookRunner } from '../hooks/runner.js';
import { layerNorm } from './ops.js';
import type { EmbeddingsParams } from './params.js';

/**
 * Padding-aware position ids, as Hugging Face `create_position_ids_from_input_ids`:
 * cumsum(ids != pad) · (ids != pad) + pad. The first real token gets pad + 1 (= 2), and any `<pad>`
 * id, a literal one inside the text included, gets pad (a zero row) without advancing the count.
 */
export function positionIds(inputIds: readonly (readonly number[])[], pad: number): number[][] {
  return inputIds.map((row) => {
    let count = 0;
    return row.map((id) => (id === pad ? pad : pad + ++count));
  });
}

/** ids [B, T] int32, positions [B, T] int32 -> [B, T, H]. */
export function embeddings(
  ids: tf.Tensor2D,
  positions: tf.Tensor2D,
  p: EmbeddingsParams,
  c: XLMRobertaConfig,
  hooks: HookRunner,
): tf.Tensor3D {
  const [B, T] = ids.shape;
  const H = c.hidden_size;
  const words = tf.gather(p.word_embeddings, tf.reshape(ids, [-1])); // [B*T, H]
  const pos = tf.gather(p.position_embeddings, tf.reshape(positions, [-1])); // [B*T, H]
  const type0 = tf.slice(p.token_type_embeddings, [0, 0], [1, H]); // token_type_ids are all 0: [1, H]
  const x = tf.reshape(tf.add(tf.add(words, pos), type0), [B, T, H]);
  return hooks.point('embeddings.hook_out', layerNorm(x, p.LayerNorm, c.layer_norm_eps) as tf.Tensor3D);
}
