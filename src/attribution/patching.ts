/**
 * Real activation patching of every attention head, the ground truth attribution patching estimates:
 * for each layer l and head j, the forward is run again with head j's slice of
 * `encoder.layer.<l>.attention.self.hook_out` set to its baseline (0, or the corrupt text's), through
 * the public `runWithHooks`, and the explained quantity is read off. One forward per head and side.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Formulation } from '../run-encoder.js';
import { layerName, type ActivationName } from '../hooks/names.js';
import type { HookFn } from '../hooks/runner.js';
import type { BgeM3, EncodeOutput } from '../m3.js';
import { denseScore, lexicalMatchingScore } from '../scores.js';
import { prepare, type AttributeOptions } from './attribute.js';

export interface HeadPatching {
  /** f on the clean input(s). */
  readonly value: number;
  /** Per side (one for a text, query and passage for a pair): heads[l][j] = f(clean) − f(head patched). */
  readonly sides: Array<{ heads: number[][] }>;
}

/**
 * Head j's slice of a context [B, T, H] (`encoder.layer.<l>.attention.self.hook_out`) replaced by the
 * same slice of `to` (or zeros: the head ablated; the explorer's head clicks use this).
 */
export function patchHead(j: number, heads: number, to: tf.Tensor | undefined): HookFn {
  return (act) => tf.tidy(() => {
    const [B, T, H] = act.shape as [number, number, number];
    const d = H / heads;
    const keep = tf.tensor1d(Array.from({ length: H }, (_, f) => (Math.floor(f / d) === j ? 0 : 1))); // [H]
    const patched = tf.mul(act, keep);
    return to ? tf.add(patched, tf.mul(tf.reshape(to, [B, T, H]), tf.sub(1, keep))) : patched;
  });
}

/**
 * f(clean) − f(head patched) for every head of every layer, with the options of `attribute` (target,
 * baseline, maxLength); `forward` picks the formulation the patched runs use (default 'reference').
 */
export async function patchHeads(
  m3: BgeM3, text: string | [string, string],
  opts: Pick<AttributeOptions, 'target' | 'baseline' | 'maxLength'> & { forward?: Formulation },
): Promise<HeadPatching> {
  const p = prepare(m3, text, opts);
  const forward = opts.forward ?? 'reference';
  const L = m3.config.num_hidden_layers;
  const heads = m3.config.num_attention_heads;
  const contexts = Array.from({ length: L }, (_, l) => layerName(l, 'attention.self.hook_out'));

  // The quantity read from one run of side s (the other side clean).
  let weight = NaN;
  const read: Partial<Record<ActivationName, HookFn>> = p.quantity.kind === 'lexical-weight'
    ? { 'sparse_head.hook_out': (w) => { weight = w.dataSync()[(p.quantity as { position: number }).position]!; } }
    : {};
  const run = (s: number, hooks: Partial<Record<ActivationName, HookFn>>) =>
    m3.runWithHooks({ inputIds: [p.ids[s]!] }, { ...read, ...hooks }, { forward });
  const clean: EncodeOutput[] = [];
  for (let s = 0; s < p.ids.length; s++) clean.push(await run(s, {}));
  const cleanWeight = weight;
  const f = (outs: EncodeOutput[]): number => {
    if (p.quantity.kind === 'lexical-weight') return weight;
    if (p.quantity.kind === 'dense-score') return denseScore(outs[0]!.denseVecs![0]!, outs[1]!.denseVecs![0]!);
    return lexicalMatchingScore(outs[0]!.lexicalWeights![0]!, outs[1]!.lexicalWeights![0]!);
  };
  const value = p.quantity.kind === 'lexical-weight' ? cleanWeight : f(clean);

  const sides: HeadPatching['sides'] = [];
  for (let s = 0; s < p.ids.length; s++) {
    const corrupt = p.corruptIds ? await m3.runWithCache({ inputIds: [p.corruptIds[s]!] }, { names: contexts, forward }) : undefined;
    try {
      const rows: number[][] = [];
      for (let l = 0; l < L; l++) {
        const row: number[] = [];
        for (let j = 0; j < heads; j++) {
          const out = await run(s, { [contexts[l]!]: patchHead(j, heads, corrupt?.cache.get(contexts[l]!)) });
          const outs = clean.map((c, i) => (i === s ? out : c));
          row.push(value - f(outs));
        }
        rows.push(row);
      }
      sides.push({ heads: rows });
    } finally {
      corrupt?.cache.dispose();
    }
  }
  return { value, sides };
}
