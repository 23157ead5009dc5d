/**
 * The encoder with the op set the caller picked (`forward`):
 * - `reference`: the textbook op set (model/ops.ts `textbookOps`): batched attention with every score at once;
 * - `fast` (default): the fast op set (model/fast/ops.ts): the FMA kernel where it runs, attention that
 *   never holds a head's [T, T] scores, the work after the attention in chunks of token rows.
 * Both run the one layer of model/layer.ts; tests hold them equal. Before the embeddings and each layer
 * the wasm heap is checked for room for that step's peak, so a batch too big fails with a clear error
 * instead of silently.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Batch } from './batches.js';
import type { XLMRobertaConfig } from './config.js';
import type { HookRunner } from './hooks/runner.js';
import { watchedHeads } from './model/attention.js';
import { encoder } from './model/encoder.js';
import { embeddingsPeakBlocks, fastOps, fastPeakBlocks, textbookPeakBlocks, type FastOptions } from './model/fast/ops.js';
import { encoderLayer, wholeLayer, type LayerFn } from './model/layer.js';
import { textbookOps } from './model/ops.js';
import type { M3Params } from './model/params.js';
import { ensureHeap } from './runtime/heap-guard.js';

export const FORMULATIONS = ['fast', 'reference'] as const;
export type Formulation = (typeof FORMULATIONS)[number];

const HEAP_HINT = 'Encode fewer tokens per batch (maxTokensPerBatch, maxLength) or cache fewer activations.';

/** Throws unless `f` names a formulation. */
export function checkFormulation(f: unknown): Formulation {
  if (!(FORMULATIONS as readonly unknown[]).includes(f)) {
    throw new RangeError(`forward must be one of ${FORMULATIONS.map((x) => `'${x}'`).join(', ')}, got ${JSON.stringify(f)}`);
  }
  return f as Formulation;
}

/** Runs the encoder on a padded batch; returns the last hidden state [B, T, H], owned by the caller. */
export function runEncoder(
  batch: Batch, p: M3Params, c: XLMRobertaConfig, hooks: HookRunner, forward: Formulation = 'fast', fast: FastOptions = {},
): tf.Tensor3D {
  const [B, T] = [batch.inputIds.length, batch.inputIds[0]!.length];
  ensureHeap(embeddingsPeakBlocks(B, T, c), `the embeddings of ${B}×${T} tokens`, HEAP_HINT);
  const ops = forward === 'reference' ? textbookOps : fastOps(fast);
  const opts = forward === 'reference' ? {} : { hookHeads: fast.hookHeads };
  const layer: LayerFn = (x, keyBias, lp, cfg, i, h) => {
    const peak = forward === 'reference' ? textbookPeakBlocks(B, T, c) : fastPeakBlocks(B, T, c, fast, wholeLayer(i, h));
    const [h0, h1] = watchedHeads(i, h, c.num_attention_heads, opts); // their scores, probabilities and context, whole
    const watched = new Array<number>(h1 > h0 ? 3 : 0).fill(4 * B * (h1 - h0) * T * T);
    ensureHeap([...peak, ...watched], `encoder layer ${i} on ${B}×${T} tokens${h1 > h0 ? ` with the scores of ${h1 - h0} heads` : ''}`,
      h1 > h0 ? 'Ask for fewer heads (fast.hookHeads), fewer layers, or a shorter input.' : HEAP_HINT);
    return encoderLayer(x, keyBias, lp, cfg, i, h, ops, opts);
  };
  return encoder(batch, p, c, hooks, layer);
}
