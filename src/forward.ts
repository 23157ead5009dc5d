/**
 * The encoder in the formulation the caller picked:
 * - `reference`: the textbook forward of src/model/ (batched attention with every score at once);
 * - `fast` (default): src/model/fast/, the same function in blocks and chunks, shaped for the wasm
 *   backend's fast 2-D matMuls and for long inputs.
 * Tests hold the two equal. Before the embeddings and each layer the wasm heap is checked for room
 * for that step's peak, so a batch too big fails with a clear error instead of silently.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { XLMRobertaConfig } from './config.js';
import type { HookRunner } from './hooks/runner.js';
import type { Batch } from './batches.js';
import { encoder } from './model/encoder.js';
import type { FastOptions } from './model/fast/attention.js';
import { fastLayer } from './model/fast/layer.js';
import { embeddingsPeakBlocks, layerPeakBlocks, referenceLayerPeakBlocks, wholeLayer } from './model/fast/plan.js';
import { encoderLayer, type LayerFn } from './model/layer.js';
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
  const layer: LayerFn = (x, keyBias, lp, cfg, i, h) => {
    const peak = forward === 'reference' ? referenceLayerPeakBlocks(B, T, c) : layerPeakBlocks(B, T, c, fast, wholeLayer(i, h));
    ensureHeap(peak, `encoder layer ${i} on ${B}×${T} tokens`, HEAP_HINT);
    return forward === 'reference' ? encoderLayer(x, keyBias, lp, cfg, i, h) : fastLayer(x, keyBias, lp, cfg, i, h, fast);
  };
  return encoder(batch, p, c, hooks, layer);
}
