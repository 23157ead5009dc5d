/**
 * The primitives every module is made of: Linear, LayerNorm, exact GELU and L2 normalisation, each
 * disposing its own intermediates as soon as they are used (a layer's tf.tidy would otherwise keep them
 * all to its end); and the op set a layer is computed with (`OpSet`): these plain tf ops (`textbookOps`),
 * or the fast path's (fast/ops.ts), which computes the same functions on the kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerNormParams, Linear } from './params.js';

/**
 * x·Wᵀ + b on the last axis: [..., in] -> [..., out], with W as stored, [out, in].
 *
 * Computed as (W·xᵀ)ᵀ + b: the weights are used as stored, with no transposed copy of them kept
 * (docs/PERFORMANCE.md says why this order is the fast one on the wasm backend).
 */
export function linear(x: tf.Tensor, p: Linear): tf.Tensor {
  const [outDim, inDim] = p.weight.shape;
  const lead = x.shape.slice(0, -1);
  const y = tf.tidy(() => {
    const xT = tf.transpose(tf.reshape(x, [-1, inDim])) as tf.Tensor2D; // [in, N]
    const yT = tf.matMul(p.weight, xT); // [out, N]
    xT.dispose();
    const yN = tf.transpose(yT); // [N, out]
    yT.dispose();
    return tf.add(yN, p.bias);
  });
  return tf.reshape(y, [...lead, outDim]);
}

/** LayerNorm over the last axis with biased variance, as torch.nn.LayerNorm. */
export function layerNorm(x: tf.Tensor, p: LayerNormParams, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const centred = tf.sub(x, tf.mean(x, -1, true));
    const sq = tf.square(centred);
    const variance = tf.mean(sq, -1, true);
    sq.dispose();
    const normed = tf.mul(centred, tf.rsqrt(tf.add(variance, eps)));
    centred.dispose();
    const scaled = tf.mul(normed, p.weight);
    normed.dispose();
    return tf.add(scaled, p.bias);
  });
}

/** Exact GELU, x·Φ(x) = x/2·(1 + erf(x/√2)) (Hugging Face "gelu"; not the tanh approximation). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const u = tf.mul(x, Math.SQRT1_2);
    const e = tf.erf(u);
    u.dispose();
    const onePlus = tf.add(e, 1);
    e.dispose();
    const prod = tf.mul(x, onePlus);
    onePlus.dispose();
    return tf.mul(prod, 0.5);
  });
}

/** x / max(‖x‖₂, 1e-12) over the last axis, as torch.nn.functional.normalize. */
export function l2normalize(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const norm = tf.sqrt(tf.sum(tf.square(x), -1, true));
    return tf.div(x, tf.maximum(norm, 1e-12));
  });
}

/** x [B, T, H] -> [B, heads, T, d]: head j is features j·d … (j+1)·d − 1. */
export function splitHeads(x: tf.Tensor, heads: number): tf.Tensor4D {
  const [B, T, H] = x.shape as [number, number, number];
  return tf.transpose(tf.reshape(x, [B, T, heads, H / heads]), [0, 2, 1, 3]) as tf.Tensor4D;
}

/** x [B, heads, T, d] -> [B, T, H]: the inverse of `splitHeads`. */
export function mergeHeads(x: tf.Tensor4D): tf.Tensor3D {
  const [B, heads, T, d] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B, T, heads * d]) as tf.Tensor3D;
}

/**
 * The attention core, every head at once: softmax(q·kᵀ/√d + keyBias)·v for q, k, v [B, heads, T, d]
 * and keyBias [B, 1, 1, T]. Returns the context [B, heads, T, d], and the scores and probabilities
 * [B, heads, T, T] through `watch` (which may replace them) when given.
 */
export function attentionCore(
  q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, keyBias: tf.Tensor4D,
  watch?: { scores(s: tf.Tensor4D): tf.Tensor4D; probs(p: tf.Tensor4D): tf.Tensor4D },
): tf.Tensor4D {
  return tf.tidy(() => {
    const d = q.shape[3];
    const qk = tf.matMul(q, k, false, true); // [B, heads, T, T]: query rows, key columns
    const s = tf.add(tf.mul(qk, 1 / Math.sqrt(d)), keyBias) as tf.Tensor4D;
    const scores = watch ? watch.scores(s) : s;
    const p = tf.softmax(scores) as tf.Tensor4D; // over the keys (last axis)
    const probs = watch ? watch.probs(p) : p;
    return tf.matMul(probs, v);
  });
}

/** The primitives a layer is computed with (model/layer.ts, model/attention.ts). Shapes: [..., features]. */
export interface OpSet {
  /** x·Wᵀ + b for several Linears of one x (q, k and v): [..., in] -> [..., out] each. */
  linears(x: tf.Tensor, ps: readonly Linear[]): tf.Tensor[];
  /** GELU(x·Wᵀ + b): [..., in] -> [..., out]. */
  linearGelu(x: tf.Tensor, p: Linear): tf.Tensor;
  /** LayerNorm(h·Wᵀ + b + residual), the step that ends both sub-layers. */
  addAndNorm(h: tf.Tensor, residual: tf.Tensor, p: { dense: Linear; LayerNorm: LayerNormParams }, eps: number): tf.Tensor;
  /** softmax(q·kᵀ/√d + keyBias)·v per head, for token-major q, k, v [B, T, heads·d] and keyBias [B, 1, 1, T]: [B, T, heads·d]. */
  attention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, keyBias: tf.Tensor4D, heads: number): tf.Tensor3D;
  /** Runs `f`, a function of token rows, on `xs` ([N, H] each, N rows alike): whole, or on chunks of rows. */
  byRows(xs: readonly tf.Tensor2D[], f: (xs: tf.Tensor2D[]) => tf.Tensor2D): tf.Tensor2D;
}

/** The textbook op set: the plain tf ops above, every head's [T, T] scores at once. */
export const textbookOps: OpSet = {
  linears: (x, ps) => ps.map((p) => linear(x, p)),
  linearGelu: (x, p) => tf.tidy(() => gelu(linear(x, p))),
  addAndNorm: (h, residual, p, eps) => tf.tidy(() => layerNorm(tf.add(linear(h, p.dense), residual), p.LayerNorm, eps)),
  attention: (q, k, v, keyBias, heads) => tf.tidy(() =>
    mergeHeads(attentionCore(splitHeads(q, heads), splitHeads(k, heads), splitHeads(v, heads), keyBias))),
  byRows: (xs, f) => f([...xs]),
};
