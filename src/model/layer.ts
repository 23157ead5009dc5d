/** `encoder.layer.<i>`: a post-LayerNorm transformer layer. */
import * as tf from '@tensorflow/tfjs-core';
import type { XLMRobertaConfig } from '../config.js';
import { layerName } from '../hooks/names.js';
import type { HookRunner } from '../hooks/runner.js';
import { selfAttention, type AttentionOptions } from './attention.js';
import { layerNorm, linear, linearGelu } from './ops.js';
import type { LayerNormParams, LayerParams, Linear } from './params.js';

/**
 * "Dense, add residual, LayerNorm": the one step that ends both sub-layers
 * (`attention.output` and `output` in the weight tree).
 */
export function addAndNorm(
  h: tf.Tensor, residual: tf.Tensor, p: { dense: Linear; LayerNorm: LayerNormParams }, eps: number,
): tf.Tensor3D {
  return layerNorm(linear(h, p.dense), p.LayerNorm, eps, residual) as tf.Tensor3D;
}

/** x [B, T, H] -> [B, T, H] */
export function encoderLayer(
  x: tf.Tensor3D,
  keyBias: tf.Tensor4D,
  p: LayerParams,
  c: XLMRobertaConfig,
  i: number,
  hooks: HookRunner,
  opts: AttentionOptions = {},
): tf.Tensor3D {
  const eps = c.layer_norm_eps;
  const context = selfAttention(x, keyBias, p.attention.self, c, i, hooks, opts); // [B, T, H]
  const a = hooks.point(layerName(i, 'attention.output.hook_out'), addAndNorm(context, x, p.attention.output, eps));
  const g = hooks.point(layerName(i, 'intermediate.hook_out'), linearGelu(a, p.intermediate.dense)); // [B, T, I]
  return hooks.point(layerName(i, 'hook_out'), addAndNorm(g, a, p.output, eps));
}
