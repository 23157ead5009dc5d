/**
 * The XLM-RoBERTa encoder: token ids -> embeddings -> `encoder.layer.0 … N−1` -> last hidden state.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { XLMRobertaConfig } from '../config.js';
import type { Batch } from '../batches.js';
import type { HookRunner } from '../hooks/runner.js';
import { embeddings, positionIds } from './embeddings.js';
import { encoderLayer, type LayerFn } from './layer.js';
import type { M3Params } from './params.js';

/** 0 for real keys, −inf for padding keys, broadcast over heads and query rows: [B, 1, 1, T]. */
export function keyBias(batch: Batch): tf.Tensor4D {
  const [B, T] = [batch.attentionMask.length, batch.attentionMask[0]!.length];
  return tf.tensor4d(batch.attentionMask.flatMap((r) => r.map((m) => (m ? 0 : -Infinity))), [B, 1, 1, T], 'float32');
}

/**
 * Runs the encoder on a padded batch; returns the last hidden state [B, T, H], owned by the caller.
 * Each layer runs in its own tidy, so only one layer's intermediates live at a time. `layer` is how a
 * layer is computed: the textbook `encoderLayer` by default (the fast path passes its own).
 */
export function encoder(
  batch: Batch, p: M3Params, c: XLMRobertaConfig, hooks: HookRunner, layer: LayerFn = encoderLayer,
): tf.Tensor3D {
  const bias = keyBias(batch); // [B, 1, 1, T]
  let x: tf.Tensor3D;
  try {
    x = tf.tidy(() => {
      const ids = tf.tensor2d(batch.inputIds.map((r) => [...r]), undefined, 'int32'); // [B, T]
      const pos = tf.tensor2d(positionIds(batch.inputIds, c.pad_token_id), undefined, 'int32'); // [B, T]
      return embeddings(ids, pos, p.embeddings, c, hooks); // [B, T, H]
    });
  } catch (e) {
    bias.dispose();
    throw e;
  }
  try {
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const prev = x;
      x = tf.tidy(() => layer(prev, bias, p.encoder.layer[i]!, c, i, hooks)); // [B, T, H]
      prev.dispose();
    }
  } catch (e) {
    x.dispose();
    throw e;
  } finally {
    bias.dispose();
  }
  return x;
}
