/**
 * The primitives every module is made of: Linear, LayerNorm, exact GELU and L2 normalisation.
 * Each disposes its own intermediates as soon as they are used, so a long input holds at most two
 * temporaries of an op at a time (a layer's tf.tidy would otherwise keep them all to its end).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerNormParams, Linear } from './params.js';
import { layerNormRows, linearRowMajor, softmaxRows } from '../kernels/index.js';

/**
 * x·Wᵀ + b on the last axis: [..., in] -> [..., out], with W as stored, [out, in].
 *
 * Computed as (W·xᵀ)ᵀ + b. On the wasm backend only a plain 2-D `matMul(a, b)` reaches XNNPACK
 * (transposed or batched operands fall back to a scalar loop, ~10× slower), and XNNPACK packs the
 * right operand `b` once per tensor and keeps the packed copy while that tensor lives. With the
 * activations as `b`, the packed copy is small and freed with them, the weights need no transposed
 * copy, and nothing is kept per weight: the heap holds each weight once.
 */
export function linear(x: tf.Tensor, p: Linear): tf.Tensor {
  const [outDim, inDim] = p.weight.shape;
  const lead = x.shape.slice(0, -1);
  const y = tf.tidy(() => {
    const x2 = tf.reshape(x, [-1, inDim]) as tf.Tensor2D; // [N, in]
    // The FMA kernel (src/kernels) reads x and W as they are and adds the bias in its store; null where it cannot run.
    const k = linearRowMajor(x2, p.weight, p.bias);
    if (k) return k;
    const xT = tf.transpose(x2) as tf.Tensor2D; // [in, N]
    const yT = tf.matMul(p.weight, xT); // [out, N]
    xT.dispose();
    const yN = tf.transpose(yT); // [N, out]
    yT.dispose();
    return tf.add(yN, p.bias);
  });
  return tf.reshape(y, [...lead, outDim]);
}

/** gelu(linear(x, p)); with the FMA kernel (src/kernels) in one pass, the GELU applied in the GEMM's store. */
export function linearGelu(x: tf.Tensor, p: Linear): tf.Tensor {
  const [outDim, inDim] = p.weight.shape;
  return tf.tidy(() => {
    const k = linearRowMajor(tf.reshape(x, [-1, inDim]) as tf.Tensor2D, p.weight, p.bias, 'gelu');
    return k ? tf.reshape(k, [...x.shape.slice(0, -1), outDim]) : gelu(linear(x, p));
  });
}

/**
 * LayerNorm over the last axis with biased variance, as torch.nn.LayerNorm; of x + residual when a
 * residual is given (with the FMA kernel's row ops, src/kernels: the add and the norm in one job).
 */
export function layerNorm(x: tf.Tensor, p: LayerNormParams, eps: number, residual?: tf.Tensor): tf.Tensor {
  const H = x.shape[x.shape.length - 1]!;
  return tf.tidy(() => {
    const as2d = (t: tf.Tensor): tf.Tensor2D => tf.reshape(t, [-1, H]);
    const k = layerNormRows(as2d(x), p.weight, p.bias, eps, residual ? as2d(residual) : undefined);
    if (k) return tf.reshape(k, x.shape);
    if (residual) x = tf.add(x, residual);
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

/** softmax over the last axis (with the kernel's row ops, src/kernels, where they run). */
export function softmax(x: tf.Tensor): tf.Tensor {
  const n = x.shape[x.shape.length - 1]!;
  return tf.tidy(() => {
    const k = softmaxRows(tf.reshape(x, [-1, n]));
    return k ? tf.reshape(k, x.shape) : tf.softmax(x);
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
