/**
 * BGE-M3's sparse (lexical) head, whole: FlagEmbedding's `BGEM3Model.sparse_embedding` and
 * `_process_token_weights`.
 *
 *   token weights   w_t = relu(sparse_linear(h_t))                 sparse_head.hook_out  [B, T]
 *   lexical weights {id: max over the text's positions t with that id of w_t}
 *                   without the special ids and without weights <= 0
 */
import * as tf from '@tensorflow/tfjs-core';
import type { HookRunner } from '../hooks/runner.js';
import { linear } from '../model/ops.js';
import type { Linear } from '../model/params.js';
import type { LexicalWeights } from '../scores.js';

/** Per-token weights relu(sparse_linear(h)). h [B, T, H] -> [B, T] */
export function sparseHead(h: tf.Tensor3D, p: Linear, hooks: HookRunner): tf.Tensor2D {
  const [B, T] = h.shape;
  const s = hooks.point('sparse_linear.hook_out', linear(h, p) as tf.Tensor3D); // [B, T, 1]
  return hooks.point('sparse_head.hook_out', tf.reshape(tf.relu(s), [B, T]) as tf.Tensor2D);
}

/** The ids of a tokenizer that never carry a lexical weight. */
export interface SpecialIds { readonly bosId: number; readonly eosId: number; readonly padId: number; readonly unkId: number }

/** `<s>`, `</s>`, `<pad>` and `<unk>`: FlagEmbedding's `unused_tokens`. */
export function unusedTokenIds(t: SpecialIds): Set<number> {
  return new Set([t.bosId, t.eosId, t.padId, t.unkId]);
}

/**
 * Lexical weights of one text from its per-token weights: per token id the largest weight over its
 * occurrences, dropping the unused ids and weights <= 0.
 */
export function lexicalWeights(inputIds: readonly number[], tokenWeights: ArrayLike<number>, unused: ReadonlySet<number>): LexicalWeights {
  const result: LexicalWeights = {};
  inputIds.forEach((id, i) => {
    const w = tokenWeights[i]!;
    if (unused.has(id) || !(w > 0)) return;
    const key = String(id);
    if (!(key in result) || w > result[key]!) result[key] = w;
  });
  return result;
}

/** Lexical weights of every row of a batch, from its token weights [B, T] (row-major, rows padded to T). */
export function batchLexicalWeights(
  inputIds: readonly (readonly number[])[], tokenWeights: Float32Array, T: number, unused: ReadonlySet<number>,
): LexicalWeights[] {
  return inputIds.map((ids, b) => lexicalWeights(ids, tokenWeights.subarray(b * T, b * T + ids.length), unused));
}
