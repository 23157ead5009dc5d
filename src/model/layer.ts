/**
 * `encoder.layer.<i>`: a post-LayerNorm transformer layer.
 *
 *   a = LayerNorm(x + attention.output.dense(selfAttention(x)))     attention.output.hook_out
 *   g = GELU(intermediate.dense(a))                                   intermediate.hook_out
 *   y = LayerNorm(a + output.dense(g))                                hook_out
 *
 * Written once; its primitives come from an op set (ops.ts `OpSet`): `textbookOps`, or the fast
 * path's (fast/ops.ts). Everything after the attention works on each token row alone, so the op set
 * may run it on chunks of rows (`byRows`) unless a hook inside it wants whole tensors.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { XLMRobertaConfig } from '../config.js';
import { layerName } from '../hooks/names.js';
import type { HookRunner } from '../hooks/runner.js';
import { selfAttention, type AttentionOptions } from './attention.js';
import { textbookOps, type OpSet } from './ops.js';
import type { LayerParams } from './params.js';

/** True when layer i must run whole after its attention: a hook wants a tensor inside it. */
export function wholeLayer(i: number, hooks: HookRunner): boolean {
  return hooks.wants(layerName(i, 'attention.output.hook_out')) || hooks.wants(layerName(i, 'intermediate.hook_out'));
}

/** x [B, T, H] -> [B, T, H] */
export function encoderLayer(
  x: tf.Tensor3D,
  keyBias: tf.Tensor4D,
  p: LayerParams,
  c: XLMRobertaConfig,
  i: number,
  hooks: HookRunner,
  ops: OpSet = textbookOps,
  opts: AttentionOptions = {},
): tf.Tensor3D {
  const eps = c.layer_norm_eps;
  const [B, T, H] = x.shape;
  const context = selfAttention(x, keyBias, p.attention.self, c, i, hooks, ops, opts); // [B, T, H]
  /** The rest of the layer, row by row: on [B, T, H] (whole) or on token rows [n, H]. */
  const rest = <T extends tf.Tensor>(ctx: T, res: T): T => {
    const a = hooks.point(layerName(i, 'attention.output.hook_out'), ops.addAndNorm(ctx, res, p.attention.output, eps)); // [.., H]
    const g = hooks.point(layerName(i, 'intermediate.hook_out'), ops.linearGelu(a, p.intermediate.dense)); // [.., I]
    return ops.addAndNorm(g, a, p.output, eps) as T; // [.., H]
  };
  const flat = (t: tf.Tensor3D) => tf.reshape(t, [B * T, H]) as tf.Tensor2D; // [B, T, H] -> [B·T, H]
  const y = wholeLayer(i, hooks)
    ? rest(context, x)
    : (tf.reshape(ops.byRows([flat(context), flat(x)], ([ctx, res]) => rest(ctx!, res!)), [B, T, H]) as tf.Tensor3D);
  return hooks.point(layerName(i, 'hook_out'), y);
}

/** How one layer is computed, as `encoder` calls it. */
export type LayerFn = (x: tf.Tensor3D, keyBias: tf.Tensor4D, p: LayerParams, c: XLMRobertaConfig, i: number, hooks: HookRunner) => tf.Tensor3D;
