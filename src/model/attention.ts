/**
 * `encoder.layer.<i>.attention.self`: multi-head scaled dot-product self-attention.
 *
 *   q, k, v = x·Wqᵀ + bq, x·Wkᵀ + bk, x·Wvᵀ + bv     split into heads of d = H / heads features
 *   scores  = q·kᵀ / √d + keyBias                     keyBias: 0 for real keys, −inf for padding
 *   probs   = softmax(scores) over the keys
 *   context = probs·v                                 heads merged back
 *
 * The primitives come from an op set (ops.ts `OpSet`): the textbook one computes every head's scores
 * at once; the fast one (fast/ops.ts) runs the projections and the attention core on the kernel.
 * The hooks are planted here, once. When a hook watches q, k, v, scores or probabilities, those are
 * made with the plain attention core (`attentionCore`), scores and probabilities only for the heads
 * in `hookHeads`; if no hook replaced any of them the context is still the op set's, so watching
 * changes nothing downstream.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { XLMRobertaConfig } from '../config.js';
import { layerName, type LayerSite } from '../hooks/names.js';
import type { HookRunner } from '../hooks/runner.js';
import { attentionCore, mergeHeads, splitHeads, type OpSet } from './ops.js';
import type { LayerParams } from './params.js';

/** Options of the hooked attention. */
export interface AttentionOptions {
  /**
   * Heads [from, to) whose scores and probabilities are made when a hook or the cache asks for
   * `hook_scores` / `hook_probs` (default: all). Those hooks then see [B, to − from, T, T]; a long
   * input may only afford a few heads (one head of 8192 tokens is 256 MiB).
   */
  readonly hookHeads?: readonly [number, number];
}

/** The validated head range of `hookHeads`. */
export function hookHeadRange(opts: AttentionOptions, heads: number): [number, number] {
  const r = opts.hookHeads;
  if (r === undefined) return [0, heads];
  const [a, b] = r;
  if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b > heads || a >= b) {
    throw new RangeError(`fast.hookHeads must be [from, to) with 0 <= from < to <= ${heads}, got [${a}, ${b}]`);
  }
  return [a, b];
}

const INTERNALS = ['hook_q', 'hook_k', 'hook_v', 'hook_scores', 'hook_probs'] as const;

/** The heads [h0, h1) a hook watches the scores or probabilities of in layer i; [0, 0] when none. */
export function watchedHeads(i: number, hooks: HookRunner, heads: number, opts: AttentionOptions): [number, number] {
  const wants = hooks.wants(layerName(i, 'attention.self.hook_scores')) || hooks.wants(layerName(i, 'attention.self.hook_probs'));
  return wants ? hookHeadRange(opts, heads) : [0, 0];
}

/** x [B, T, H], keyBias [B, 1, 1, T] -> context [B, T, H] (`attention.self.hook_out`). */
export function selfAttention(
  x: tf.Tensor3D,
  keyBias: tf.Tensor4D,
  p: LayerParams['attention']['self'],
  c: XLMRobertaConfig,
  i: number,
  hooks: HookRunner,
  ops: OpSet,
  opts: AttentionOptions = {},
): tf.Tensor3D {
  const heads = c.num_attention_heads;
  const at = (site: LayerSite) => layerName(i, site);
  const context = tf.tidy(() => {
    const [q, k, v] = ops.linears(x, [p.query, p.key, p.value]) as tf.Tensor3D[]; // [B, T, H] each
    if (!INTERNALS.some((s) => hooks.wants(at(`attention.self.${s}`)))) return ops.attention(q!, k!, v!, keyBias, heads);

    let replaced = false; // did a hook return a tensor of its own?
    const point = <T extends tf.Tensor>(site: LayerSite, t: T): T => {
      const out = hooks.point(at(site), t);
      if (out !== t) replaced = true;
      return out;
    };
    const qh = point('attention.self.hook_q', splitHeads(q!, heads)); // [B, heads, T, d]
    const kh = point('attention.self.hook_k', splitHeads(k!, heads)); // [B, heads, T, d]
    const vh = point('attention.self.hook_v', splitHeads(v!, heads)); // [B, heads, T, d]
    const [h0, h1] = watchedHeads(i, hooks, heads, opts);
    const [B, , T, d] = qh.shape;
    const headsOf = (t: tf.Tensor4D, from: number, to: number) => (from === 0 && to === heads ? t : tf.slice(t, [0, from, 0, 0], [B, to - from, T, d]));
    // The watched heads through the plain core: [B, h1 − h0, T, d]
    const watched = h1 > h0
      ? attentionCore(headsOf(qh, h0, h1), headsOf(kh, h0, h1), headsOf(vh, h0, h1), keyBias, {
        scores: (s) => point('attention.self.hook_scores', s),
        probs: (pr) => point('attention.self.hook_probs', pr),
      })
      : null;
    if (!replaced) return ops.attention(q!, k!, v!, keyBias, heads); // hooks only watched
    // A hook replaced something: the watched heads' context is the one made from the hooks' tensors;
    // the other heads are attended by the op set, from the (possibly replaced) q, k, v.
    const others = (from: number, to: number): tf.Tensor3D[] => (to > from
      ? [ops.attention(mergeHeads(headsOf(qh, from, to)), mergeHeads(headsOf(kh, from, to)), mergeHeads(headsOf(vh, from, to)), keyBias, to - from)]
      : []);
    const parts = watched ? [...others(0, h0), mergeHeads(watched), ...others(h1, heads)] : others(0, heads);
    return parts.length === 1 ? parts[0]! : (tf.concat(parts, 2) as tf.Tensor3D); // [B, T, H], heads in order
  });
  return hooks.point(at('attention.self.hook_out'), context);
}
