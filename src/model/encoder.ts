/**
 * The XLM-RoBERTa encoder: embeddings, then `encoder.layer.0 … N−1`.
 *
 * Each layer runs as `encoderLayer` (layer.ts: the module-by-module definition) when the plain
 * formulation is asked for, else as `fastLayer` below: the same ops and hook points, with the
 * feed-forward block kept feature-major ([I, N]) so that its [N, I] activations are never transposed,
 * and the work after the attention done on chunks of token rows. Tests hold the two to the same
 * outputs (test/perf/attention.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { XLMRobertaConfig } from '../config.js';
import { layerName } from '../hooks/names.js';
import type { HookRunner } from '../hooks/runner.js';
import { ensureHeap } from '../perf/heap-guard.js';
import { sliceRows } from '../perf/heap-ops.js';
import { attentionGroups, DEFAULT_CHUNK_TOKENS, queryBlockRows, selfAttention, type AttentionOptions } from './attention.js';
import { embeddings, positionIds } from './embeddings.js';
import { addAndNorm, encoderLayer } from './layer.js';
import { gelu, layerNorm, linear, linearGelu } from './ops.js';
import { kernelActive } from '../kernels/index.js';
import type { LayerParams, M3Params } from './params.js';

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
 * The feed-forward block on token rows a [n, H]: LN(W₂·gelu(W₁·aᵀ + b₁) + b₂ + a), with the
 * intermediate activations kept feature-major ([I, n]: ops.linear would transpose them once out of W₁
 * and once into W₂). `onIntermediate` may look at (and replace) gelu(W₁·aᵀ + b₁)ᵀ.
 */
function feedForward(
  a: tf.Tensor2D, p: LayerParams, c: XLMRobertaConfig, onIntermediate?: (gT: tf.Tensor2D) => tf.Tensor2D,
): tf.Tensor2D {
  const I = c.intermediate_size;
  if (kernelActive()) return feedForwardRowMajor(a, p, c, onIntermediate);
  return tf.tidy(() => {
    const aT = tf.transpose(a) as tf.Tensor2D; // [H, n]
    const hT = tf.matMul(p.intermediate.dense.weight, aT); // [I, n]
    aT.dispose();
    const hb = tf.add(hT, tf.reshape(p.intermediate.dense.bias, [I, 1]));
    hT.dispose();
    let gT = gelu(hb) as tf.Tensor2D;
    hb.dispose();
    if (onIntermediate) gT = onIntermediate(gT);
    const yT = tf.matMul(p.output.dense.weight, gT); // [H, n]
    gT.dispose();
    const yN = tf.transpose(yT); // [n, H]
    yT.dispose();
    const y = tf.add(yN, p.output.dense.bias);
    yN.dispose();
    const s = tf.add(y, a);
    y.dispose();
    return layerNorm(s, p.output.LayerNorm, c.layer_norm_eps) as tf.Tensor2D;
  });
}

/**
 * `feedForward` when the FMA kernel runs (src/kernels): token-major throughout, since the kernel's
 * Linear reads [n, in] and writes [n, out] with the bias in its store, so no transposes at all
 * (except around `onIntermediate`, which sees the feature-major gᵀ as in `feedForward`).
 */
function feedForwardRowMajor(
  a: tf.Tensor2D, p: LayerParams, c: XLMRobertaConfig, onIntermediate?: (gT: tf.Tensor2D) => tf.Tensor2D,
): tf.Tensor2D {
  return tf.tidy(() => {
    let g = linearGelu(a, p.intermediate.dense) as tf.Tensor2D; // [n, I], GELU in the GEMM's store
    if (onIntermediate) g = tf.transpose(onIntermediate(tf.transpose(g) as tf.Tensor2D)) as tf.Tensor2D;
    const y = linear(g, p.output.dense); // [n, H]
    g.dispose();
    return layerNorm(y, p.output.LayerNorm, c.layer_norm_eps, a) as tf.Tensor2D; // LN(y + a)
  });
}

/**
 * `encoder.layer.<i>` as `encoderLayer` computes it, with two changes of layout: the feed-forward
 * block is feature-major (see `feedForward`), and unless a hook wants `attention.output.hook_out` or
 * `intermediate.hook_out`, everything after the attention runs on chunks of `chunkTokens` token rows
 * (cache-sized operands for XNNPACK, and small temporaries for long inputs). The hooks that are
 * wanted see the usual shapes, and their replacements are used.
 */
export function fastLayer(
  x: tf.Tensor3D, keyBias: tf.Tensor4D, p: LayerParams, c: XLMRobertaConfig, i: number, hooks: HookRunner, opts: AttentionOptions = {},
): tf.Tensor3D {
  const [B, T, H] = x.shape;
  const N = B * T;
  const I = c.intermediate_size;
  const eps = c.layer_norm_eps;
  const context = selfAttention(x, keyBias, p.attention.self, c, i, hooks, opts); // [B, T, H]
  const aSite = layerName(i, 'attention.output.hook_out');
  const gSite = layerName(i, 'intermediate.hook_out');
  let out: tf.Tensor3D;
  if (hooks.wants(aSite) || hooks.wants(gSite)) {
    const a = hooks.point(aSite, addAndNorm(context, x, p.attention.output, eps)); // [B, T, H]
    const onIntermediate = (gT: tf.Tensor2D): tf.Tensor2D => {
      if (!hooks.wants(gSite)) return gT;
      const g = tf.reshape(tf.transpose(gT), [B, T, I]) as tf.Tensor3D;
      const hooked = hooks.point(gSite, g);
      return hooked === g ? gT : (tf.transpose(tf.reshape(hooked, [N, I])) as tf.Tensor2D);
    };
    out = tf.reshape(feedForward(tf.reshape(a, [N, H]) as tf.Tensor2D, p, c, onIntermediate), [B, T, H]) as tf.Tensor3D;
  } else {
    const chunk = Math.max(1, opts.chunkTokens ?? DEFAULT_CHUNK_TOKENS);
    const ctx2 = tf.reshape(context, [N, H]) as tf.Tensor2D;
    const x2 = tf.reshape(x, [N, H]) as tf.Tensor2D;
    const pieces: tf.Tensor2D[] = [];
    for (let r0 = 0; r0 < N; r0 += chunk) {
      const n = Math.min(chunk, N - r0);
      pieces.push(tf.tidy(() => {
        const a = addAndNorm(sliceRows(ctx2, r0, n), sliceRows(x2, r0, n), p.attention.output, eps) as unknown as tf.Tensor2D;
        return feedForward(a, p, c);
      }));
    }
    out = tf.reshape(pieces.length === 1 ? pieces[0]! : tf.concat(pieces, 0), [B, T, H]) as tf.Tensor3D;
  }
  return hooks.point(layerName(i, 'hook_out'), out);
}

/**
 * Bytes one layer may need at its peak for a [B, T] batch, as the blocks the heap must hold at once.
 * Chunked (`fastLayer` with no hook inside the layer): the input, the transposed input chunks and
 * XNNPACK's packed copies of them, the context pieces and the output (a few [B·T, H]), one block of
 * one head's scores and probabilities, and one chunk's feed-forward temporaries. Whole (the plain
 * layer, or hooks inside it): the tensors a layer's tidy keeps, with the [B·T, I] intermediate and
 * GELU output. An estimate on the generous side, used to refuse a batch before the wasm heap runs out
 * (see perf/heap-guard.ts).
 */
export function layerPeakBlocks(B: number, T: number, c: XLMRobertaConfig, opts: AttentionOptions = {}, whole = false): number[] {
  const N = B * T;
  const W = attentionGroups(B, T, opts)[0]!.count * T; // tokens of the largest attention unit
  const n = queryBlockRows(W, opts);
  const scores = new Array<number>(2).fill(4 * n * W);
  if (whole) {
    return [...new Array<number>(3).fill(4 * N * c.intermediate_size), ...new Array<number>(10).fill(4 * N * c.hidden_size), ...scores];
  }
  const chunk = Math.min(N, Math.max(1, opts.chunkTokens ?? DEFAULT_CHUNK_TOKENS));
  return [...new Array<number>(6).fill(4 * N * c.hidden_size), ...scores, ...new Array<number>(3).fill(4 * chunk * c.intermediate_size)];
}

/** True when layer i cannot run chunked: the plain layer, or a hook inside the layer after its attention. */
function wholeLayer(i: number, hooks: HookRunner, opts: AttentionOptions): boolean {
  return opts.plain === true || hooks.wants(layerName(i, 'attention.output.hook_out')) || hooks.wants(layerName(i, 'intermediate.hook_out'));
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
  try {
    for (let i = 0; i < c.num_hidden_layers; i++) {
      ensureHeap(layerPeakBlocks(B, T, c, opts, wholeLayer(i, hooks, opts)), `encoder layer ${i} on ${B}×${T} tokens`, HEAP_HINT);
      const prev = x;
      const layer = opts.plain ? encoderLayer : fastLayer;
      x = tf.tidy(() => layer(prev, keyBias, p.encoder.layer[i]!, c, i, hooks, opts));
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
