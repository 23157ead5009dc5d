/**
 * Where a lexical weight (or a pair's dense or lexical score) comes from: its attribution to
 * attention heads, attention blocks, MLPs, the residual stream at each position, and input tokens.
 *
 * BGE-M3 is post-LayerNorm, so a model output is no sum of per-component terms; the attributions are
 * gradient-based, computed through the textbook forward with tfjs's gradients (probes.ts):
 *
 * - **Attribution patching** (components): for an activation a with baseline a′, the effect of
 *   setting a to a′ is estimated to first order as f(a) − f(a′) ≈ Σ (a − a′)·∂f/∂a, the gradient
 *   taken at the clean run. One forward and one backward give every component at once.
 *   Baseline `'zero'`: a′ = 0 (zero-ablation). Baseline `{ corrupt }`: a′ is the activation of a
 *   corrupted text with the same number of tokens, so the estimate is (clean − corrupt)·grad.
 *   Heads: `encoder.layer.<l>.attention.self.hook_out` [1, T, H] split into heads of d features (head
 *   j is features j·d … (j+1)·d − 1, as `mergeHeads` lays them out); setting head j's slice to its
 *   baseline is ablating (patching) head j. Attention block: the whole of that activation. MLP:
 *   `intermediate.hook_out` (after GELU). Residual stream: `embeddings.hook_out` and each layer's
 *   `hook_out`, per position.
 * - **Integrated gradients** (input tokens): over the embeddings' output (`embeddings.hook_out`, after
 *   their LayerNorm), from a baseline x′ to the text's x along x′ + α(x − x′); token t's attribution is
 *   Σ_features (x − x′)_t · mean_α ∂f/∂x_t (midpoint rule). By completeness the attributions sum to
 *   f(x) − f(x′) as the steps grow; `gap` reports how far the sum is from it. x′ is the corrupt text's
 *   embeddings when one is given, else every token other than `<s>` and `</s>` replaced by `<mask>`
 *   (same positions).
 *
 * The linear estimate is exact for a component f depends on linearly and drifts where softmax, GELU,
 * LayerNorm or the ReLU bend between a and a′: compare with real patching (`patchHeads`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { tensorsOnGpu } from '../backend.js';
import { layerName, type ActivationName } from '../hooks/names.js';
import type { BgeM3 } from '../m3.js';
import {
  activationsOf, disposeProbeResult, probeGradients, quantityValue, tokenWeightsOf, type Quantity, type SideInput,
} from './probes.js';

/** A token piece of the text (`'▁BM'`, or `'BM'` when only `'▁BM'` is there), a token id, or a position. */
export type TokenTarget = string | number | { position: number };
/** What to attribute for a pair of texts. */
export type ScoreTarget = 'dense' | 'lexical';

export interface AttributeOptions {
  /** Text: the token whose lexical weight is explained. Pair: the score, `'dense'` or `'lexical'`. */
  target: TokenTarget | ScoreTarget;
  /**
   * Baseline of attribution patching: `'zero'` (default, zero-ablation), or a corrupted text (a pair
   * of texts for a pair) whose tokenization has as many tokens as the clean one.
   */
  baseline?: 'zero' | { corrupt: string | [string, string] };
  /** Integrated-gradients steps (default 32); more steps, smaller completeness gap. */
  steps?: number;
  /** Integrated-gradients steps run as one batch (default 8): memory against speed. */
  stepsPerBatch?: number;
  /** Truncation in tokens (default: the model's). */
  maxLength?: number;
}

/** One text's attributions. Every number estimates f(clean) − f(component at its baseline). */
export interface SideAttribution {
  readonly text: string;
  readonly inputIds: number[];
  readonly tokens: string[];
  /** heads[l][j]: head j of layer l (attribution patching). */
  readonly heads: number[][];
  /** attention[l]: layer l's whole self-attention output (the sum of its heads). */
  readonly attention: number[];
  /** mlp[l]: layer l's MLP (its GELU output). */
  readonly mlp: number[];
  /** residual[r][t]: position t of hidden_states[r] (r = 0 embeddings, r = l + 1 layer l's output). */
  readonly residual: number[][];
  /** Integrated gradients per input token. */
  readonly tokenAttributions: number[];
}

export interface Attribution {
  /** `'lexical weight'`, `'dense score'` or `'lexical score'`. */
  readonly quantity: string;
  /** The token explained (a lexical weight only). */
  readonly target?: { position: number; id: number; token: string };
  /** f on the clean input(s). */
  readonly value: number;
  readonly baseline: 'zero' | 'corrupt';
  /** f with every patched activation at its baseline: the corrupt input's f (corrupt baseline only). */
  readonly baselineValue?: number;
  /** One side per text (two for a pair: query, passage). */
  readonly sides: SideAttribution[];
  readonly integratedGradients: {
    /** 'mask' (tokens replaced by <mask>) or 'corrupt'. */
    readonly baseline: 'mask' | 'corrupt';
    readonly steps: number;
    /** f at the integrated-gradients baseline. */
    readonly baselineValue: number;
    /** Σ of every side's token attributions. */
    readonly sum: number;
    /** sum − (value − baselineValue): 0 for exact integration. */
    readonly gap: number;
  };
  /** Set when the explained weight is 0 (the ReLU is off): every gradient is then 0. */
  readonly note?: string;
}

const DEFAULT_STEPS = 32;
const DEFAULT_STEPS_PER_BATCH = 8;

function checkSteps(v: unknown, name: string, fallback: number): number {
  const n = v ?? fallback;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 4096) {
    throw new RangeError(`${name} must be an integer in [1, 4096], got ${JSON.stringify(v)}`);
  }
  return n;
}

/** The activations attribution patching reads, for an L-layer model. */
export function probedNames(layers: number): ActivationName[] {
  const names: ActivationName[] = ['embeddings.hook_out'];
  for (let l = 0; l < layers; l++) {
    names.push(layerName(l, 'attention.self.hook_out'), layerName(l, 'intermediate.hook_out'), layerName(l, 'hook_out'));
  }
  return names;
}

/** A text's tokens, refused when it has none besides `<s>` and `</s>`. */
function tokenizeText(m3: BgeM3, text: unknown, arg: string, maxLength?: number): number[] {
  if (typeof text !== 'string') throw new TypeError(`${arg} must be a string, got ${text === null ? 'null' : typeof text}`);
  const [ids] = m3.tokenize([text], maxLength, arg);
  if (ids!.length <= 2) throw new RangeError(`${arg} ${JSON.stringify(text)} has no tokens besides <s> and </s>: nothing to attribute`);
  return ids!;
}

/**
 * The position of the token explained: for a piece or an id, the occurrence with the largest weight
 * (a lexical weight is the max over an id's occurrences), so `weights` gives the text's token weights;
 * it is called only when the id occurs more than once (it runs a forward).
 */
export function resolveTarget(m3: BgeM3, ids: readonly number[], target: TokenTarget, weights: () => ArrayLike<number>): number {
  const tok = m3.tokenizer;
  const SHOWN = 40; // a long text's token list is cut, so that the error stays readable
  const shown = () => ids.slice(0, SHOWN).map((id, t) => `${t}:${tok.idToToken(id)}`).join(' ')
    + (ids.length > SHOWN ? ` … (${ids.length - SHOWN} more)` : '');
  let id: number;
  if (typeof target === 'object' && target !== null && 'position' in target) {
    const p = target.position;
    if (!Number.isInteger(p) || p < 0 || p >= ids.length) {
      throw new RangeError(`target position ${JSON.stringify(p)} is not a position of the text (0 … ${ids.length - 1}: ${shown()})`);
    }
    return p;
  } else if (typeof target === 'number') {
    if (!Number.isInteger(target) || target < 0 || target >= m3.config.vocab_size) {
      throw new RangeError(`target id ${JSON.stringify(target)} is not a token id in [0, ${m3.config.vocab_size})`);
    }
    id = target;
  } else if (typeof target === 'string') {
    if (target === '') throw new RangeError('target is an empty string; give a token piece of the text, a token id or { position }');
    const inText = (i: number | undefined) => i !== undefined && ids.includes(i);
    const exact = tok.tokenToId(target);
    const spaced = target.startsWith('▁') ? undefined : tok.tokenToId(`▁${target}`);
    const found = [exact, spaced].find(inText) ?? exact ?? spaced;
    if (found === undefined) {
      const pieces = tok.textIds(target).map((i) => tok.idToToken(i));
      throw new RangeError(`target ${JSON.stringify(target)} is not a token of the vocabulary (it tokenizes to ${pieces.join(' ')}); `
        + `give one of the text's token pieces: ${shown()}`);
    }
    id = found;
  } else {
    throw new TypeError(`target must be a token piece, a token id or { position }, got ${JSON.stringify(target)}`);
  }
  const at = ids.flatMap((x, t) => (x === id ? [t] : []));
  if (at.length === 0) {
    throw new RangeError(`target ${JSON.stringify(target)} (id ${id}, ${tok.idToToken(id)}) is not in the text; its tokens are ${shown()}`);
  }
  if (at.length === 1) return at[0]!;
  const w = weights();
  return at.reduce((best, t) => (w[t]! > w[best]! ? t : best));
}

/** Σ over all but the last axis' grouping: x [1, T, F] -> per-position sums [T]. */
const perPosition = (x: tf.Tensor): number[] => tf.tidy(() => Array.from(tf.sum(x, [0, 2]).dataSync()));

/** (a − a′)·g summed over positions, per group of `d` features: [1, T, F] -> [F / d]. */
function perGroup(x: tf.Tensor, groups: number): number[] {
  return tf.tidy(() => {
    const [, T, F] = x.shape as [number, number, number];
    return Array.from(tf.sum(tf.reshape(x, [T, groups, F / groups]), [0, 2]).dataSync()); // [T, groups, d] -> [groups]
  });
}

/** Integrated gradients per token of every side, over `embeddings.hook_out`, from x′ to x. */
function integratedGradients(
  m3: BgeM3, q: Quantity, ids: number[][], x: tf.Tensor[], x0: tf.Tensor[], steps: number, perBatch: number,
): number[][] {
  const E: ActivationName = 'embeddings.hook_out';
  const sums = x.map((t) => tf.keep(tf.zerosLike(t))); // Σ_α ∂f/∂x, [1, T, H] per side
  try {
    for (let k0 = 0; k0 < steps; k0 += perBatch) {
      const n = Math.min(perBatch, steps - k0);
      const alphas = Array.from({ length: n }, (_, i) => (k0 + i + 0.5) / steps); // midpoint rule
      const path = x.map((xs, s) => tf.tidy(() => {
        const a = tf.tensor3d(alphas, [n, 1, 1]);
        return tf.add(x0[s]!, tf.mul(a, tf.sub(xs, x0[s]!))); // [n, T, H]
      }));
      const sides: SideInput[] = ids.map((i, s) => ({ ids: i, rows: n, replace: new Map([[E, path[s]!]]) }));
      let r;
      try {
        r = probeGradients(m3, q, sides, [E]);
      } finally {
        tf.dispose(path);
      }
      r.sides.forEach((side, s) => {
        const g = tf.sum(side.grads.get(E)!, 0, true); // [n, T, H] -> [1, T, H]
        const next = tf.keep(tf.add(sums[s]!, g));
        g.dispose();
        sums[s]!.dispose();
        sums[s] = next;
      });
      disposeProbeResult(r);
    }
    return sums.map((g, s) => tf.tidy(() => perPosition(tf.mul(tf.sub(x[s]!, x0[s]!), tf.div(g, steps)))));
  } finally {
    tf.dispose(sums);
  }
}

/** The texts, their ids, the quantity and the corrupt ids of an `attribute`/`patchHeads` call, checked. */
export interface Prepared {
  readonly pair: boolean;
  readonly texts: string[];
  readonly ids: number[][];
  readonly quantity: Quantity;
  readonly target?: { position: number; id: number; token: string };
  readonly corruptIds?: number[][];
}

/** Validates the input and the options shared by `attribute` and `patchHeads`. */
export function prepare(m3: BgeM3, text: string | [string, string], opts: Pick<AttributeOptions, 'target' | 'baseline' | 'maxLength'>): Prepared {
  if (!opts || typeof opts !== 'object') throw new TypeError('options with a target are required');
  const pair = Array.isArray(text);
  if (pair && text.length !== 2) throw new TypeError(`a pair is [query, passage], got ${(text as string[]).length} texts`);
  const texts = pair ? text : [text];
  const args = pair ? ['query', 'passage'] : ['text'];
  const ids = texts.map((t, s) => tokenizeText(m3, t, args[s]!, opts.maxLength));
  const tok = m3.tokenizer;

  let q: Quantity;
  let target: Attribution['target'];
  if (pair) {
    if (opts.target !== 'dense' && opts.target !== 'lexical') {
      throw new RangeError(`for a [query, passage] pair the target is 'dense' or 'lexical' (the score to explain), got ${JSON.stringify(opts.target)}`);
    }
    q = { kind: opts.target === 'dense' ? 'dense-score' : 'lexical-score' };
  } else {
    if (opts.target === undefined) throw new TypeError('target is required: a token piece of the text, a token id or { position }');
    const position = resolveTarget(m3, ids[0]!, opts.target as TokenTarget, () => tokenWeightsOf(m3, ids[0]!));
    target = { position, id: ids[0]![position]!, token: tok.idToToken(ids[0]![position]!) };
    q = { kind: 'lexical-weight', position };
  }

  const b = opts.baseline ?? 'zero';
  let corruptIds: number[][] | undefined;
  if (b !== 'zero') {
    if (!b || typeof b !== 'object' || !('corrupt' in b)) throw new TypeError(`baseline must be 'zero' or { corrupt }, got ${JSON.stringify(b)}`);
    const c = b.corrupt;
    if (pair !== Array.isArray(c) || (Array.isArray(c) && c.length !== 2)) {
      throw new TypeError(`baseline.corrupt must be ${pair ? 'a [query, passage] pair' : 'a string'} like the input`);
    }
    const ct = Array.isArray(c) ? c : [c];
    corruptIds = ct.map((t, s) => {
      const arg = `baseline.corrupt${pair ? `[${s}]` : ''}`;
      const i = tokenizeText(m3, t, arg, opts.maxLength);
      if (i.length !== ids[s]!.length) {
        throw new RangeError(`${arg} has ${i.length} tokens and the ${args[s]} ${ids[s]!.length}: a corrupt input must have as many tokens (positions are patched one to one)`);
      }
      return i;
    });
  }

  return { pair, texts, ids, quantity: q, ...(target ? { target } : {}), ...(corruptIds ? { corruptIds } : {}) };
}

/**
 * Attribution of one text's token lexical weight (`text` a string) or of a pair's dense or lexical
 * score (`text` a [query, passage] pair). See the top of this file for the methods.
 *
 * Cost: one forward and one backward for every component, plus steps / stepsPerBatch of each for
 * integrated gradients, on the reference forward; the backward keeps every layer's intermediates,
 * by estimate (not measured) some 24 × (2·heads·T² + 20·T·H) floats per text for BGE-M3: ~0.3 GB
 * at 128 tokens, ~1.8 GB at 512. Keep texts short on the wasm backend.
 */
export async function attribute(m3: BgeM3, text: string | [string, string], opts: AttributeOptions): Promise<Attribution> {
  if (tensorsOnGpu()) {
    throw new Error(`attribute: runs on the wasm or cpu backend, not '${tf.getBackend()}': its gradients and probes are read `
      + 'back synchronously, which on a GPU backend stalls the page (and on some adapters loses the device)');
  }
  const { texts, ids, quantity: q, target, corruptIds } = prepare(m3, text, opts);
  const steps = checkSteps(opts.steps, 'steps', DEFAULT_STEPS);
  const perBatch = checkSteps(opts.stepsPerBatch, 'stepsPerBatch', DEFAULT_STEPS_PER_BATCH);
  const tok = m3.tokenizer;
  const L = m3.config.num_hidden_layers;
  const heads = m3.config.num_attention_heads;
  const names = probedNames(L);
  const clean = probeGradients(m3, q, ids.map((i) => ({ ids: i })), names);
  const corrupt = corruptIds?.map((i) => activationsOf(m3, i, names));
  try {
    const sides: SideAttribution[] = clean.sides.map((side, s) => {
      // (a − a′)·∂f/∂a at one activation
      const effect = (n: ActivationName) => tf.tidy(() => {
        const a = side.activations.get(n)!;
        return tf.mul(corrupt ? tf.sub(a, corrupt[s]!.get(n)!) : a, side.grads.get(n)!);
      });
      const withEffect = <T>(n: ActivationName, fn: (e: tf.Tensor) => T): T => {
        const e = effect(n);
        try { return fn(e); } finally { e.dispose(); }
      };
      const headRows = Array.from({ length: L }, (_, l) => withEffect(layerName(l, 'attention.self.hook_out'), (e) => perGroup(e, heads)));
      return {
        text: texts[s]!,
        inputIds: ids[s]!,
        tokens: ids[s]!.map((id) => tok.idToToken(id)),
        heads: headRows,
        attention: headRows.map((r) => r.reduce((x, y) => x + y, 0)),
        mlp: Array.from({ length: L }, (_, l) => withEffect(layerName(l, 'intermediate.hook_out'), (e) => perGroup(e, 1)[0]!)),
        residual: [names[0]!, ...Array.from({ length: L }, (_, l) => layerName(l, 'hook_out'))].map((n) => withEffect(n, perPosition)),
        tokenAttributions: [],
      };
    });

    // Integrated gradients over the embeddings, from the corrupt text's or the <mask> text's.
    const E: ActivationName = 'embeddings.hook_out';
    const special = new Set([tok.bosId, tok.eosId, tok.padId]);
    const igIds = corruptIds ?? ids.map((i) => i.map((id) => (special.has(id) ? id : tok.maskId)));
    const x = clean.sides.map((side) => side.activations.get(E)!);
    const x0 = corrupt ? corrupt.map((c) => c.get(E)!) : igIds.map((i) => activationsOf(m3, i, [E]).get(E)!);
    let ig: number[][];
    let igBaselineValue: number;
    try {
      ig = integratedGradients(m3, q, ids, x, x0, steps, perBatch);
      igBaselineValue = quantityValue(m3, q, ids.map((i, s) => ({ ids: i, replace: new Map([[E, x0[s]!]]) })));
    } finally {
      if (!corrupt) tf.dispose(x0);
    }
    ig.forEach((a, s) => (sides[s] as { tokenAttributions: number[] }).tokenAttributions = a);
    const sum = ig.flat().reduce((x1, y) => x1 + y, 0);

    return {
      quantity: q.kind.replace('-', ' '),
      ...(target ? { target } : {}),
      value: clean.value,
      baseline: corrupt ? 'corrupt' : 'zero',
      // The corrupt run is the integrated-gradients baseline too (x′ = its embeddings): f(x′) is its f.
      ...(corrupt ? { baselineValue: igBaselineValue } : {}),
      sides,
      integratedGradients: {
        baseline: corrupt ? 'corrupt' : 'mask', steps, baselineValue: igBaselineValue, sum, gap: sum - (clean.value - igBaselineValue),
      },
      ...(q.kind === 'lexical-weight' && clean.value === 0
        ? { note: `the weight of ${target!.token} is 0 (W_lex·h + b ≤ 0, the ReLU is off): its gradient, so every attribution, is 0` }
        : {}),
    };
  } finally {
    disposeProbeResult(clean);
    for (const c of corrupt ?? []) tf.dispose([...c.values()]);
  }
}
