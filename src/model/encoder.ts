/** The XLM-RoBERTa encoder: embeddings, then `encoder.layer.0 … N−1`. */
import * as tf from '@tensorflow/tfjs-core';
import type { XLMRobertaConfig } from '../config.js';
import type { HookRunner } from '../hooks/runner.js';
import { ensureHeap } from '../perf/heap-guard.js';
import { queryBlockRows, type AttentionOptions } from './attention.js';
import { embeddings, positionIds } from './embeddings.js';
import { encoderLayer } from './layer.js';
import type { M3Params } from './params.js';

/** A right-padded batch of token ids. */
export interface Batch {
  readonly inputIds: readonly (readonly number[])[]; // B rows of T ids (padded with pad_token_id)
  readonly attentionMask: readonly (readonly number[])[]; // 1 real, 0 padding
}

/** Pads token-id rows on the right to the longest row. */
export function padBatch(rows: readonly (readonly number[])[], padId: number): Batch {
  const T = Math.max(...rows.map((r) => r.length));
  return {
    inputIds: rows.map((r) => [...r, ...new Array<number>(T - r.length).fill(padId)]),
    attentionMask: rows.map((r) => [...new Array<number>(r.length).fill(1), ...new Array<number>(T - r.length).fill(0)]),
  };
}

/**
 * Bytes one layer may need at its peak for a [B, T] batch, as the blocks the heap must hold at once:
 * the tensors a layer's tidy keeps (sub-layer outputs, the [B·T, I] intermediate and GELU output)
 * plus the largest temporaries (one block of one head's scores and probabilities). An estimate, a
 * little generous; used to refuse a batch before the wasm heap runs out (see perf/heap-guard.ts).
 */
export function layerPeakBlocks(B: number, T: number, c: XLMRobertaConfig, opts: AttentionOptions = {}): number[] {
  const N = B * T;
  const n = queryBlockRows(T, opts);
  return [
    ...new Array<number>(3).fill(4 * N * c.intermediate_size),
    ...new Array<number>(10).fill(4 * N * c.hidden_size),
    ...new Array<number>(2).fill(4 * n * T),
  ];
}

const HEAP_HINT = 'Encode fewer tokens per batch (maxTokensPerBatch, maxLength) or cache fewer activations.';

/**
 * Runs the encoder. Each layer runs in its own tidy so only one layer's intermediates live at a
 * time; before each, the wasm heap is checked for room for that layer's peak (a full heap would
 * otherwise fail silently). Returns the last hidden state [B, T, H]; the caller owns it.
 */
export function encode(
  batch: Batch, p: M3Params, c: XLMRobertaConfig, hooks: HookRunner, opts: AttentionOptions = {},
): tf.Tensor3D {
  const ids = tf.tensor2d(batch.inputIds.map((r) => [...r]), undefined, 'int32'); // [B, T]
  const pos = tf.tensor2d(positionIds(batch.inputIds, c.pad_token_id), undefined, 'int32'); // [B, T]
  const [B, T] = ids.shape;
  // 0 for real keys, −inf for padding keys, broadcast over heads and query rows: [B, 1, 1, T]
  const keyBias = tf.tensor4d(
    batch.attentionMask.flatMap((r) => r.map((m) => (m ? 0 : -Infinity))), [B, 1, 1, T], 'float32',
  );
  let x: tf.Tensor3D;
  try {
    ensureHeap(new Array<number>(6).fill(4 * B * T * c.hidden_size), `the embeddings of ${B}×${T} tokens`, HEAP_HINT);
    x = tf.tidy(() => embeddings(ids, pos, p.embeddings, c, hooks));
  } catch (e) {
    keyBias.dispose();
    throw e;
  } finally {
    ids.dispose();
    pos.dispose();
  }
  const plan = layerPeakBlocks(B, T, c, opts);
  try {
    for (let i = 0; i < c.num_hidden_layers; i++) {
      ensureHeap(plan, `encoder layer ${i} on ${B}×${T} tokens`, HEAP_HINT);
      const prev = x;
      x = tf.tidy(() => encoderLayer(prev, keyBias, p.encoder.layer[i]!, c, i, hooks, opts));
      prev.dispose();
    }
  } catch (e) {
    x.dispose();
    throw e;
  } finally {
    keyBias.dispose();
  }
  return x;
}
