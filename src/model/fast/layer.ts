/**
 * The fast formulation of `encoder.layer.<i>` (the textbook one is ../layer.ts; tests hold the two
 * equal): the same ops and hook points, with the feed-forward block kept feature-major ([I, N]) so
 * that its [N, I] activations are never transposed, and the work after the attention done on chunks
 * of token rows.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { XLMRobertaConfig } from '../../config.js';
import { layerName } from '../../hooks/names.js';
import type { HookRunner } from '../../hooks/runner.js';
import { sliceRows } from '../../runtime/heap-ops.js';
import { kernelActive } from '../../kernels/index.js';
import { gelu } from '../ops.js';
import { addAndNorm, layerNorm, linear, linearGelu } from './ops.js';
import type { LayerParams } from '../params.js';
import { fastSelfAttention, feedForwardChunk, type FastOptions } from './attention.js';

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
 * `encoder.layer.<i>` as `encoderLayer` (../layer.ts) computes it, with two changes of layout: the feed-forward
 * block is feature-major (see `feedForward`), and unless a hook wants `attention.output.hook_out` or
 * `intermediate.hook_out`, everything after the attention runs on chunks of `chunkTokens` token rows
 * (cache-sized operands for XNNPACK, and small temporaries for long inputs). The hooks that are
 * wanted see the usual shapes, and their replacements are used.
 */
export function fastLayer(
  x: tf.Tensor3D, keyBias: tf.Tensor4D, p: LayerParams, c: XLMRobertaConfig, i: number, hooks: HookRunner, opts: FastOptions = {},
): tf.Tensor3D {
  const [B, T, H] = x.shape;
  const N = B * T;
  const I = c.intermediate_size;
  const eps = c.layer_norm_eps;
  const context = fastSelfAttention(x, keyBias, p.attention.self, c, i, hooks, opts); // [B, T, H]
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
    const chunk = feedForwardChunk(opts);
    const ctx2 = tf.reshape(context, [N, H]) as tf.Tensor2D;
    const x2 = tf.reshape(x, [N, H]) as tf.Tensor2D;
    const pieces: tf.Tensor2D[] = [];
    for (let r0 = 0; r0 < N; r0 += chunk) {
      const n = Math.min(chunk, N - r0);
      pieces.push(tf.tidy(() => {
        const rows = (t: tf.Tensor2D) => (n === N ? t : sliceRows(t, r0, n)); // one chunk: no copy
        const a = addAndNorm(rows(ctx2), rows(x2), p.attention.output, eps) as unknown as tf.Tensor2D;
        return feedForward(a, p, c);
      }));
    }
    out = tf.reshape(pieces.length === 1 ? pieces[0]! : tf.concat(pieces, 0), [B, T, H]) as tf.Tensor3D;
  }
  return hooks.point(layerName(i, 'hook_out'), out);
}
