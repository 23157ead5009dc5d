/**
 * Gradients of a model output with respect to activations at named hook points, through the
 * textbook forward (`forward: 'reference'`) and tfjs's registered gradients.
 *
 * A "probe" is a zero tensor of an activation's shape that a hook adds to the activation: the forward
 * is unchanged, and the gradient with respect to the probe is the gradient with respect to the
 * activation. One forward and one backward give the gradient at every probed point at once.
 *
 * The quantities (the scalar f that is differentiated):
 *   lexical weight   w_t = relu(W_lex·h_t + b) of one position t of one text        (one side)
 *   dense score      ⟨normalize(h_q[0]), normalize(h_p[0])⟩                       (two sides)
 *   lexical score    Σ over ids in both texts of max_t w_q,t · max_t w_p,t,
 *                    without <s>, </s>, <pad>, <unk>, as `lexicalMatchingScore`       (two sides)
 */
import * as tf from '@tensorflow/tfjs-core';
import '../tfjs-api.js'; // the gradient of every op, registered by the union package
import { runEncoder } from '../run-encoder.js';
import { denseHead } from '../heads/dense.js';
import { sparseHead, unusedTokenIds } from '../heads/sparse.js';
import type { ActivationName } from '../hooks/names.js';
import { HookRunner, NO_HOOKS, type HookFn } from '../hooks/runner.js';
import { padBatch } from '../batches.js';
import type { BgeM3 } from '../m3.js';

/** What is differentiated. `position` is the token whose lexical weight is explained. */
export type Quantity =
  | { kind: 'lexical-weight'; position: number }
  | { kind: 'dense-score' }
  | { kind: 'lexical-score' };

/** One text's side of the forward: its ids, and optional replacement activations (patches). */
export interface SideInput {
  readonly ids: readonly number[];
  /**
   * Activations to use in place of the model's (each [rows, …] with rows = `rows` below, or [1, …]),
   * e.g. interpolated embeddings for integrated gradients. Not owned: the caller disposes them.
   */
  readonly replace?: ReadonlyMap<ActivationName, tf.Tensor>;
  /** Copies of the text run as one batch (integrated gradients runs several α at once); default 1. */
  readonly rows?: number;
}

/** Per side: the probed activations and f's gradient at each, every tensor [rows, …] as the hook saw it. */
export interface SideGradients {
  readonly activations: Map<ActivationName, tf.Tensor>;
  readonly grads: Map<ActivationName, tf.Tensor>;
}

export interface ProbeResult {
  /** f summed over the rows of a side (one row: f itself). */
  readonly value: number;
  readonly sides: SideGradients[];
}

/** Disposes every tensor of a probe result. */
export function disposeProbeResult(r: { sides: SideGradients[] }): void {
  for (const s of r.sides) {
    tf.dispose([...s.activations.values(), ...s.grads.values()]);
  }
}

/** Per-token lexical weights of a hidden state: [rows, T, H] -> [rows, T]. */
function tokenWeights(m3: BgeM3, h: tf.Tensor3D): tf.Tensor2D {
  return sparseHead(h, m3.params.sparse_linear, NO_HOOKS);
}

/**
 * The lexical matching score of two texts as tensors (FlagEmbedding's `_process_token_weights` then
 * `compute_lexical_matching_score`): per shared id the largest weight of each side, multiplied, summed.
 * wq [rows, Tq], wp [rows, Tp] -> [rows]. Weights are ≥ 0, so a max over w·mask is the max over the
 * id's positions (and 0 when every occurrence weighs 0, as the dropped entry contributes 0).
 */
function lexicalScore(m3: BgeM3, q: readonly number[], p: readonly number[], wq: tf.Tensor2D, wp: tf.Tensor2D): tf.Tensor1D {
  const unused = unusedTokenIds(m3.tokenizer);
  const shared = [...new Set(q)].filter((id) => !unused.has(id) && p.includes(id));
  if (shared.length === 0) return tf.zeros([wq.shape[0]]) as tf.Tensor1D;
  const mask = (ids: readonly number[]) => tf.tensor2d(shared.map((s) => ids.map((id) => (id === s ? 1 : 0))), [shared.length, ids.length]);
  const best = (w: tf.Tensor2D, ids: readonly number[]) =>
    tf.max(tf.mul(tf.expandDims(w, 1), mask(ids)), 2); // [rows, 1, T] · [ids, T] -> [rows, ids, T] -> [rows, ids]
  return tf.sum(tf.mul(best(wq, q), best(wp, p)), 1) as tf.Tensor1D;
}

/** f of the last hidden states (one per side, each [rows, T, H]) as [rows]. */
function quantityOf(m3: BgeM3, q: Quantity, sides: readonly SideInput[], hs: tf.Tensor3D[]): tf.Tensor1D {
  if (q.kind === 'lexical-weight') {
    const w = tokenWeights(m3, hs[0]!); // [rows, T]
    return tf.reshape(tf.slice(w, [0, q.position], [-1, 1]), [-1]) as tf.Tensor1D;
  }
  if (q.kind === 'dense-score') {
    return tf.sum(tf.mul(denseHead(hs[0]!, NO_HOOKS), denseHead(hs[1]!, NO_HOOKS)), 1) as tf.Tensor1D; // [rows, H] -> [rows]
  }
  return lexicalScore(m3, sides[0]!.ids, sides[1]!.ids, tokenWeights(m3, hs[0]!), tokenWeights(m3, hs[1]!));
}

/** How many texts a quantity reads. */
export const sidesOf = (q: Quantity): number => (q.kind === 'lexical-weight' ? 1 : 2);

/** Runs one side's encoder with the hooks given; returns the last hidden state [rows, T, H]. */
function encodeSide(m3: BgeM3, side: SideInput, hooks: HookRunner): tf.Tensor3D {
  const rows = side.rows ?? 1;
  const batch = padBatch(Array.from({ length: rows }, () => side.ids), m3.config.pad_token_id);
  return runEncoder(batch, m3.params, m3.config, hooks, 'reference');
}

/** A hook that replaces the activation with `t` (broadcast to its shape when t has one row). */
function replaceWith(t: tf.Tensor): HookFn {
  return (act) => (tf.util.arraysEqual(t.shape, act.shape) ? tf.clone(t) : tf.broadcastTo(t, act.shape));
}

/**
 * f's value and its gradient at each of `names` on each side (the same names on every side).
 * Replacements (`SideInput.replace`) are applied before the probes, so the gradient is at the
 * replaced activation. Every returned tensor is owned by the caller (`disposeProbeResult`).
 */
export function probeGradients(m3: BgeM3, q: Quantity, sides: readonly SideInput[], names: readonly ActivationName[]): ProbeResult {
  if (sides.length !== sidesOf(q)) throw new Error(`${q.kind} reads ${sidesOf(q)} text(s), got ${sides.length}`);
  // First pass without probes, to learn every probed activation's shape and keep the activations.
  const activations = sides.map((side) => {
    const runner = new HookRunner({ hooks: replacementHooks(side), cache: [...names] });
    const h = encodeSide(m3, side, runner);
    h.dispose();
    return runner.cache;
  });
  const flat = sides.flatMap((_, s) => names.map((n) => ({ s, n })));
  const probes = flat.map(({ s, n }) => tf.zerosLike(activations[s]!.get(n)!));
  try {
    const f = (...xs: tf.Tensor[]): tf.Scalar => {
      const hs = sides.map((side, s) => {
        const hooks: Partial<Record<ActivationName, HookFn[]>> = {};
        for (const [name, t] of side.replace ?? []) hooks[name] = [replaceWith(t)];
        names.forEach((n, i) => {
          hooks[n] = [...(hooks[n] ?? []), (act) => tf.add(act, xs[s * names.length + i]!)];
        });
        return encodeSide(m3, side, new HookRunner({ hooks }));
      });
      return tf.sum(quantityOf(m3, q, sides, hs)) as tf.Scalar;
    };
    const { value, grads } = tf.valueAndGrads(f)(probes);
    const v = value.dataSync()[0]!;
    value.dispose();
    return {
      value: v,
      sides: sides.map((_, s) => ({
        activations: activations[s]!,
        grads: new Map(names.map((n, i) => [n, grads[s * names.length + i]!])),
      })),
    };
  } catch (e) {
    for (const a of activations) tf.dispose([...a.values()]);
    throw e;
  } finally {
    tf.dispose(probes);
  }
}

function replacementHooks(side: SideInput): Partial<Record<ActivationName, HookFn>> {
  const hooks: Partial<Record<ActivationName, HookFn>> = {};
  for (const [name, t] of side.replace ?? []) hooks[name] = replaceWith(t);
  return hooks;
}

/** f's value without gradients (each side's rows summed), with the replacements applied. */
export function quantityValue(m3: BgeM3, q: Quantity, sides: readonly SideInput[]): number {
  return tf.tidy(() => {
    const hs = sides.map((side) => encodeSide(m3, side, new HookRunner({ hooks: replacementHooks(side) })));
    return tf.sum(quantityOf(m3, q, sides, hs)).dataSync()[0]!;
  });
}

/** Activations of one text at `names` (each [1, …]); the caller disposes them. */
export function activationsOf(m3: BgeM3, ids: readonly number[], names: readonly ActivationName[]): Map<ActivationName, tf.Tensor> {
  const runner = new HookRunner({ cache: [...names] });
  encodeSide(m3, { ids }, runner).dispose();
  return runner.cache;
}

/** Per-token lexical weights of one text through the reference forward: [T]. */
export function tokenWeightsOf(m3: BgeM3, ids: readonly number[]): Float32Array {
  return tf.tidy(() => tokenWeights(m3, encodeSide(m3, { ids }, NO_HOOKS)).dataSync() as Float32Array);
}
