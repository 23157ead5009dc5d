/**
 * The primitives of ../ops.ts as the fast path runs them: on the FMA kernel (src/kernels) where it
 * runs, which reads x [N, in] and W [out, in] as they are, adds the bias (and GELU) in its store and
 * splits LayerNorm and softmax rows over its threads; otherwise the textbook op itself.
 */
import * as tf from '@tensorflow/tfjs-core';
import { layerNormRows, linearRowMajor, softmaxRows } from '../../kernels/index.js';
import { gelu, layerNorm as layerNormPlain, linear as linearPlain } from '../ops.js';
import type { LayerNormParams, Linear } from '../params.js';

/** x·Wᵀ + b on the last axis, as ../ops.ts `linear`. */
export function linear(x: tf.Tensor, p: Linear): tf.Tensor {
  const [outDim, inDim] = p.weight.shape;
  return tf.tidy(() => {
    const k = linearRowMajor(tf.reshape(x, [-1, inDim]) as tf.Tensor2D, p.weight, p.bias);
    return k ? tf.reshape(k, [...x.shape.slice(0, -1), outDim]) : linearPlain(x, p);
  });
}

/** gelu(linear(x, p)); on the kernel in one pass, the GELU applied in the GEMM's store. */
export function linearGelu(x: tf.Tensor, p: Linear): tf.Tensor {
  const [outDim, inDim] = p.weight.shape;
  return tf.tidy(() => {
    const k = linearRowMajor(tf.reshape(x, [-1, inDim]) as tf.Tensor2D, p.weight, p.bias, 'gelu');
    return k ? tf.reshape(k, [...x.shape.slice(0, -1), outDim]) : gelu(linearPlain(x, p));
  });
}

/** LayerNorm(x + residual) over the last axis; on the kernel the add and the norm are one job. */
export function layerNorm(x: tf.Tensor, p: LayerNormParams, eps: number, residual?: tf.Tensor): tf.Tensor {
  const H = x.shape[x.shape.length - 1]!;
  return tf.tidy(() => {
    const as2d = (t: tf.Tensor): tf.Tensor2D => tf.reshape(t, [-1, H]);
    const k = layerNormRows(as2d(x), p.weight, p.bias, eps, residual ? as2d(residual) : undefined);
    if (k) return tf.reshape(k, x.shape);
    return layerNormPlain(residual ? tf.add(x, residual) : x, p, eps);
  });
}

/** "Dense, add residual, LayerNorm" (../layer.ts `addAndNorm`) with the kernel's fused row ops. */
export function addAndNorm(
  h: tf.Tensor, residual: tf.Tensor, p: { dense: Linear; LayerNorm: LayerNormParams }, eps: number,
): tf.Tensor3D {
  return layerNorm(linear(h, p.dense), p.LayerNorm, eps, residual) as tf.Tensor3D;
}

/** softmax over the last axis, on the kernel's row ops where they run. */
export function softmax(x: tf.Tensor): tf.Tensor {
  const n = x.shape[x.shape.length - 1]!;
  return tf.tidy(() => {
    const k = softmaxRows(tf.reshape(x, [-1, n]));
    return k ? tf.reshape(k, x.shape) : tf.softmax(x);
  });
}
