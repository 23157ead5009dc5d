/** The primitives every module is made of: Linear, LayerNorm, exact GELU and L2 normalisation. */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerNormParams, Linear } from './params.js';

/** x·Wᵀ + b on the last axis: [..., in] -> [..., out]. */
export function linear(x: tf.Tensor, p: Linear): tf.Tensor {
  const [inDim, outDim] = p.weightT.shape;
  const lead = x.shape.slice(0, -1);
  const x2 = tf.reshape(x, [-1, inDim]); // [N, in]
  const y = tf.fused.matMul({ a: x2 as tf.Tensor2D, b: p.weightT, bias: p.bias }); // [N, out]
  return tf.reshape(y, [...lead, outDim]);
}

/** LayerNorm over the last axis with biased variance, as torch.nn.LayerNorm. */
export function layerNorm(x: tf.Tensor, p: LayerNormParams, eps: number): tf.Tensor {
  const centred = tf.sub(x, tf.mean(x, -1, true));
  const variance = tf.mean(tf.square(centred), -1, true);
  return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, eps))), p.weight), p.bias);
}

/** Exact GELU, x·Φ(x) = x/2·(1 + erf(x/√2)) (Hugging Face "gelu"; not the tanh approximation). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)), 0.5);
}

/** x / max(‖x‖₂, 1e-12) over the last axis, as torch.nn.functional.normalize. */
export function l2normalize(x: tf.Tensor): tf.Tensor {
  const norm = tf.sqrt(tf.sum(tf.square(x), -1, true));
  return tf.div(x, tf.maximum(norm, 1e-12));
}
