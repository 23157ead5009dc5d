/**
 * The fast formulation of `encoder.layer.<i>.attention.self` (the textbook one is ../attention.ts;
 * tests hold the two equal).
 *
 * 2-D matMuls per head on blocks of query rows. Each block sees every key, so the softmax is exact,
 * and no more than one block of one head's scores exists at a time (a [16, 8192, 8192] score tensor
 * alone would be 4 GiB). 2-D matMuls are what the wasm backend runs fast (XNNPACK); batched ones fall
 * back to a scalar loop there. Short rows are attended several at a time under a block mask (see
 * `attentionGroups`). Scores and probabilities are materialised only when a hook asks for them, and
 * then only for the heads in `FastOptions.hookHeads` (all by default); the other heads stay blocked.
 *
 * Projections are W·xᵀ (see `linear` in ../ops.ts): their output [H, n] holds head h in rows
 * h·d … (h+1)·d, so a head's kᵀ is a block of consecutive rows (a heap memcpy, see runtime/heap-ops.ts),
 * and one transpose of [heads, d, n] gives every head's q (or v) as consecutive rows too.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { XLMRobertaConfig } from '../../config.js';
import { layerName, type LayerSite } from '../../hooks/names.js';
import type { HookRunner } from '../../hooks/runner.js';
import { ensureHeap } from '../../runtime/heap-guard.js';
import { sliceRows } from '../../runtime/heap-ops.js';
import { kernelActive, kernelAttention, kernelMatMul, linearsRowMajor } from '../../kernels/index.js';
import { softmax } from './ops.js';
import type { LayerParams, Linear } from '../params.js';

/** Knobs of the fast path; results do not depend on them (tests hold every setting to the reference). */
export interface FastOptions {
  /** Query rows per block; default: as many as `scoreBudgetBytes` allows (the whole sequence up to ~2900 tokens). */
  readonly blockSize?: number;
  /** Bytes the scores and probabilities of one block of one head may hold (default 64 MiB). */
  readonly scoreBudgetBytes?: number;
  /**
   * Heads [from, to) whose scores and probabilities are materialised when a hook or the cache asks for
   * `hook_scores` / `hook_probs` (default: all heads). Those hooks then see [B, to − from, T, T]; a
   * long input may only afford a few heads (one head of 8192 tokens is 256 MiB).
   */
  readonly hookHeads?: readonly [number, number];
  /** Batch rows shorter than this many tokens are attended together (see `attentionGroups`; default 128). */
  readonly groupTokens?: number;
  /**
   * Tokens per chunk of the projections and the feed-forward block (default 256): XNNPACK re-reads
   * the activations it packs once per 4 weight rows, so they should stay cache-sized. When the FMA
   * kernel runs, the projections are not chunked and the feed-forward default is 1,024 tokens.
   */
  readonly chunkTokens?: number;
}

const DEFAULT_SCORE_BUDGET = 64 * 1024 * 1024;
const DEFAULT_GROUP_TOKENS = 128;
export const DEFAULT_CHUNK_TOKENS = 256;
/**
 * Token rows per feed-forward chunk when the FMA kernel runs: it blocks its operands for the cache
 * itself, so chunks only bound the [n, I] temporaries (16 MB at 1,024 rows) and cost a copy in and a
 * concat out each.
 */
const KERNEL_CHUNK_TOKENS = 1024;

/** Token rows per feed-forward chunk: `chunkTokens`, or the default of the path that runs. */
export function feedForwardChunk(opts: FastOptions): number {
  return Math.max(1, opts.chunkTokens ?? (kernelActive() ? KERNEL_CHUNK_TOKENS : DEFAULT_CHUNK_TOKENS));
}

/** Query rows per block so that one head's scores and probabilities (2 · rows · T float32) fit the budget. */
export function queryBlockRows(T: number, opts: FastOptions = {}): number {
  if (opts.blockSize !== undefined) return Math.max(1, Math.min(T, Math.floor(opts.blockSize)));
  const budget = opts.scoreBudgetBytes ?? DEFAULT_SCORE_BUDGET;
  return Math.max(1, Math.min(T, Math.floor(budget / (8 * T))));
}

/** The validated head range of `hookHeads`. */
export function hookHeadRange(opts: FastOptions, heads: number): [number, number] {
  const r = opts.hookHeads;
  if (r === undefined) return [0, heads];
  const [a, b] = r;
  if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b > heads || a >= b) {
    throw new RangeError(`fast.hookHeads must be [from, to) with 0 <= from < to <= ${heads}, got [${a}, ${b}]`);
  }
  return [a, b];
}

/** Rows [from, from + n) of a 2-D tensor (all rows: the tensor itself). */
function rows(t: tf.Tensor2D, from: number, n: number): tf.Tensor2D {
  return from === 0 && n === t.shape[0] ? t : sliceRows(t, from, n);
}

/** Columns [from, from + n) of a small 2-D tensor (all columns: the tensor itself). */
function cols(t: tf.Tensor2D, from: number, n: number): tf.Tensor2D {
  return from === 0 && n === t.shape[1] ? t : tf.slice(t, [0, from], [t.shape[0], n]);
}

/** a·b, plus `bias` on every row when given ([M, K]·[K, N] + [N]). */
function matMulBias(a: tf.Tensor2D, b: tf.Tensor2D, bias: tf.Tensor1D | null): tf.Tensor2D {
  const k = kernelMatMul(a, b, bias ? { bias } : {}); // the FMA kernel (src/kernels); null where it cannot run
  if (k) return k;
  return bias ? (tf.fused.matMul({ a, b, bias }) as tf.Tensor2D) : tf.matMul(a, b);
}

/** Batch rows attended together: the rows [first, first + count) of the batch. */
interface Group { first: number; count: number }

/**
 * Short rows are attended G at a time: one [G·T, G·T] score matrix per head whose off-diagonal row
 * blocks are masked to −inf. That wastes G× the (small) attention FLOPs but replaces G × heads tiny
 * matMuls with heads bigger ones; per-op overhead dominates below ~128 tokens.
 */
export function attentionGroups(B: number, T: number, opts: FastOptions = {}): Group[] {
  const G = Math.max(1, Math.min(B, Math.floor((opts.groupTokens ?? DEFAULT_GROUP_TOKENS) / T)));
  const groups: Group[] = [];
  for (let b = 0; b < B; b += G) groups.push({ first: b, count: Math.min(G, B - b) });
  return groups;
}

/**
 * The key bias of one group: per batch row the keyBias row (null when it is all 0), or for a group of
 * several rows a [G·T, G·T] matrix that also masks keys of the other rows with −inf. Made from host
 * values (the fused matMul wants a bias whose storage is rank 1).
 */
function groupBias(kb: Float32Array, g: Group, T: number): tf.Tensor1D | tf.Tensor2D | null {
  if (g.count === 1) {
    const row = kb.subarray(g.first * T, (g.first + 1) * T);
    return row.some((v) => v !== 0) ? tf.tensor1d(row, 'float32') : null;
  }
  const W = g.count * T;
  const m = new Float32Array(W * W).fill(-Infinity);
  for (let r = 0; r < g.count; r++) {
    const keys = kb.subarray((g.first + r) * T, (g.first + r + 1) * T);
    for (let i = r * T; i < (r + 1) * T; i++) m.set(keys, i * W + r * T);
  }
  return tf.tensor2d(m, [W, W], 'float32');
}

/**
 * softmax(q·kᵀ + bias)·v for queries q [m, d] (already scaled by 1/√d), keys kT [d, W], values
 * v [W, d] and `bias` ([W] on every row, or the [m, W] rows of a group mask). Returns [m, d].
 */
function attend(q: tf.Tensor2D, kT: tf.Tensor2D, v: tf.Tensor2D, bias: tf.Tensor1D | tf.Tensor2D | null): tf.Tensor2D {
  return tf.tidy(() => {
    let scores: tf.Tensor2D;
    if (bias === null || bias.rank === 1) scores = matMulBias(q, kT, bias as tf.Tensor1D | null);
    else {
      const s = tf.matMul(q, kT);
      scores = tf.add(s, bias);
      s.dispose();
    }
    const probs = softmax(scores) as tf.Tensor2D;
    scores.dispose();
    return matMulBias(probs, v, null);
  });
}

/** W·xᵀ + b for xᵀ [in, n]: [out, n] (feature-major; see `linear` in ../ops.ts). */
function projectT(l: Linear, xT: tf.Tensor2D): tf.Tensor2D {
  const yT = tf.matMul(l.weight, xT);
  const y = tf.add(yT, tf.reshape(l.bias, [l.bias.shape[0], 1])) as tf.Tensor2D;
  yT.dispose();
  return y;
}

/**
 * The three projections of token rows x [n, H] by the FMA kernel (src/kernels), which reads x as it
 * is and writes token-major y [n, H] with the bias added: q and v [heads·n, d] (head h in rows h·n …,
 * q times `scale`) and kᵀ [H, n], the layouts `projectT` + `headsTokenMajor` give.
 */
function projectRowMajor(
  p: LayerParams['attention']['self'], x: tf.Tensor2D, heads: number, scale: number,
): { q: tf.Tensor2D; kT: tf.Tensor2D; v: tf.Tensor2D } {
  const [n, H] = x.shape;
  const d = H / heads;
  const [q, k, v] = linearsRowMajor(x, [p.query, p.key, p.value])!; // [n, H] each, x packed once
  const byHead = (y: tf.Tensor2D, s?: number): tf.Tensor2D => tf.tidy(() => {
    const t = tf.reshape(tf.transpose(tf.reshape(y, [n, heads, d]), [1, 0, 2]), [heads * n, d]) as tf.Tensor2D; // [heads·n, d]
    y.dispose();
    return s === undefined ? t : (tf.mul(t, s) as tf.Tensor2D);
  });
  const kT = tf.transpose(k!) as tf.Tensor2D; // [H, n]
  k!.dispose();
  return { q: byHead(q!, scale), kT, v: byHead(v!) };
}

/** tᵀ [H, n] (head h in rows h·d …) -> [heads·n, d]: head h's token-major [n, d] in rows h·n …, times `scale`. */
function headsTokenMajor(tT: tf.Tensor2D, heads: number, scale?: number): tf.Tensor2D {
  const [H, n] = tT.shape;
  const d = H / heads;
  const r = tf.reshape(tf.transpose(tf.reshape(tT, [heads, d, n]), [0, 2, 1]), [heads * n, d]) as tf.Tensor2D;
  tT.dispose();
  if (scale === undefined) return r;
  const s = tf.mul(r, scale) as tf.Tensor2D;
  r.dispose();
  return s;
}

/**
 * x [B, T, H], keyBias [B, 1, 1, T] (0 for real keys, −inf for padding) -> context [B, T, H]
 * (`attention.self.hook_out`).
 *
 * When a hook or the cache wants q, k, v, scores or probabilities of this layer, `attentionHooked`
 * runs (whole-batch projections, so the hook tensors exist); otherwise `attentionFast`, which only
 * holds one unit of rows at a time. On the kernel, hooks that only watch leave the context exactly
 * as `attentionFast` computes it; a hook that returns a tensor of its own changes it.
 */
export function fastSelfAttention(
  x: tf.Tensor3D,
  keyBias: tf.Tensor4D,
  p: LayerParams['attention']['self'],
  c: XLMRobertaConfig,
  i: number,
  hooks: HookRunner,
  opts: FastOptions = {},
): tf.Tensor3D {
  const watched = (['hook_q', 'hook_k', 'hook_v', 'hook_scores', 'hook_probs'] as const)
    .some((s) => hooks.wants(layerName(i, `attention.self.${s}`)));
  const context = watched ? attentionHooked(x, keyBias, p, c, i, hooks, opts) : attentionFast(x, keyBias, p, c, opts);
  return hooks.point(layerName(i, 'attention.self.hook_out'), context);
}

/**
 * Units of attention: a group of short rows (see `attentionGroups`) or one long row. A unit's
 * tokens are projected in chunks of at most `chunkTokens` (the activations XNNPACK packs stay
 * cache-sized), then per head softmax(q·kᵀ/√d + bias)·v in blocks of query rows. Unhooked.
 */
function attentionFast(
  x: tf.Tensor3D, keyBias: tf.Tensor4D, p: LayerParams['attention']['self'], c: XLMRobertaConfig, opts: FastOptions,
): tf.Tensor3D {
  const [B, T, H] = x.shape;
  const heads = c.num_attention_heads;
  const d = H / heads;
  const N = B * T;
  const scale = 1 / Math.sqrt(d);
  const chunk = Math.max(1, opts.chunkTokens ?? DEFAULT_CHUNK_TOKENS);
  return tf.tidy(() => {
    const x2 = tf.reshape(x, [N, H]) as tf.Tensor2D;
    if (kernelActive() && opts.blockSize === undefined && opts.groupTokens === undefined) {
      // The FMA kernel (src/kernels): token-major q, k, v [N, H] straight from the projections, and every
      // row and head in one job that reads the heads in place (no slices, transposes or concats).
      const [q, k, v] = linearsRowMajor(x2, [p.query, p.key, p.value])!; // [N, H] each, x packed once; not null: the kernel is active
      const out = kernelAttention(q!, k!, v!, keyBias, B, heads, scale); // [N, H]
      if (out) return tf.reshape(out, [B, T, H]) as tf.Tensor3D; // tidy disposes q, k, v
      // null: no heap room for the job's scratch; the path below holds less at a time
    }
    const kb = keyBias.dataSync() as Float32Array; // [B·T] host copy (tiny)
    const out: tf.Tensor[] = [];
    for (const u of attentionGroups(B, T, opts)) {
      const W = u.count * T;
      out.push(tf.tidy(() => {
        const bias = groupBias(kb, u, T);
        // Per projection chunk of the unit: every head's q and v token-major, kᵀ feature-major.
        const parts: Array<{ w: number; q: tf.Tensor2D; kT: tf.Tensor2D; v: tf.Tensor2D }> = [];
        for (let c0 = 0; c0 < W; c0 += chunk) {
          const w = Math.min(chunk, W - c0);
          const xc = rows(x2, u.first * T + c0, w);
          if (kernelActive()) {
            parts.push({ w, ...projectRowMajor(p, xc, heads, scale) });
            if (xc !== x2) xc.dispose();
            continue;
          }
          const xT = tf.transpose(xc) as tf.Tensor2D; // [H, w], packed once by XNNPACK for the three matMuls
          if (xc !== x2) xc.dispose();
          parts.push({
            w,
            q: headsTokenMajor(projectT(p.query, xT), heads, scale), // [heads·w, d], scaled once here
            kT: projectT(p.key, xT), // [H, w]
            v: headsTokenMajor(projectT(p.value, xT), heads), // [heads·w, d]
          });
          xT.dispose();
        }
        const join = (ts: tf.Tensor2D[], axis: 0 | 1): tf.Tensor2D => (ts.length === 1 ? ts[0]! : tf.concat(ts, axis));
        const n = queryBlockRows(W, opts);
        const perHead: tf.Tensor[] = [];
        for (let h = 0; h < heads; h++) {
          perHead.push(tf.tidy(() => {
            const q = join(parts.map((t) => sliceRows(t.q, h * t.w, t.w)), 0); // [W, d]
            const kT = join(parts.map((t) => sliceRows(t.kT, h * d, d)), 1); // [d, W]
            const v = join(parts.map((t) => sliceRows(t.v, h * t.w, t.w)), 0); // [W, d]
            const ctx: tf.Tensor[] = [];
            for (let r0 = 0; r0 < W; r0 += n) {
              const m = Math.min(n, W - r0);
              const bb = bias && bias.rank === 2 ? rows(bias as tf.Tensor2D, r0, m) : bias;
              ctx.push(attend(rows(q, r0, m), kT, v, bb));
            }
            return ctx.length === 1 ? ctx[0]! : tf.concat(ctx, 0); // [W, d]
          }));
        }
        return tf.concat(perHead, 1); // [W, H], heads merged back
      }));
    }
    return tf.reshape(out.length === 1 ? out[0]! : tf.concat(out, 0), [B, T, H]) as tf.Tensor3D;
  });
}

/** Whole-batch projections, so that the q/k/v/scores/probs hooks see (and may replace) whole tensors. */
function attentionHooked(
  x: tf.Tensor3D,
  keyBias: tf.Tensor4D,
  p: LayerParams['attention']['self'],
  c: XLMRobertaConfig,
  i: number,
  hooks: HookRunner,
  opts: FastOptions,
): tf.Tensor3D {
  const [B, T, H] = x.shape;
  const heads = c.num_attention_heads;
  const d = H / heads;
  const N = B * T;
  const at = (site: LayerSite) => layerName(i, site);
  const wantAttention = hooks.wants(at('attention.self.hook_scores')) || hooks.wants(at('attention.self.hook_probs'));
  const [h0, h1] = wantAttention ? hookHeadRange(opts, heads) : [0, 0];
  const scale = 1 / Math.sqrt(d);

  return tf.tidy(() => {
    // With the FMA kernel (src/kernels) the projections are the plain path's, token-major [N, H]: the same rounding.
    const x2 = tf.reshape(x, [N, H]) as tf.Tensor2D;
    const rowMajor = linearsRowMajor(x2, [p.query, p.key, p.value]); // null without the kernel
    let replaced = false; // did a hook return a tensor of its own?
    /** A projection [H, N] = [heads, d, B, T] through its hook point ([B, heads, T, d]), when someone listens. */
    const hooked = (site: 'attention.self.hook_q' | 'attention.self.hook_k' | 'attention.self.hook_v', tT: tf.Tensor2D): tf.Tensor2D => {
      if (!hooks.wants(at(site))) return tT;
      const stacked = tf.transpose(tf.reshape(tT, [heads, d, B, T]), [2, 0, 3, 1]) as tf.Tensor4D;
      const out = hooks.point(at(site), stacked);
      if (out === stacked) return tT;
      replaced = true;
      return tf.reshape(tf.transpose(out, [1, 3, 0, 2]), [H, N]) as tf.Tensor2D;
    };
    const xT = rowMajor ? null : (tf.transpose(x2) as tf.Tensor2D); // [H, N]
    const project = (l: Linear, j: number): tf.Tensor2D => (rowMajor ? (tf.transpose(rowMajor[j]!) as tf.Tensor2D) : projectT(l, xT!));
    const qT = hooked('attention.self.hook_q', project(p.query, 0));
    const kT = hooked('attention.self.hook_k', project(p.key, 1));
    const vT = hooked('attention.self.hook_v', project(p.value, 2));
    // Hooks that only watched: the context is the plain path's (the kernel's attention job), so that
    // watching a layer does not change a single bit of what comes after it.
    const kernelContext = (): tf.Tensor3D | null => {
      const out = rowMajor && !replaced ? kernelAttention(rowMajor[0]!, rowMajor[1]!, rowMajor[2]!, keyBias, B, heads, scale) : null; // [N, H]
      return out && (tf.reshape(out, [B, T, H]) as tf.Tensor3D);
    };
    if (h1 <= h0) { // no scores or probabilities to make
      const context = kernelContext();
      if (context) return context;
    }
    const q = headsTokenMajor(qT, heads, scale); // [heads·N, d]
    const v = headsTokenMajor(vT, heads); // [heads·N, d]

    const kb = keyBias.dataSync() as Float32Array; // [B·T] host copy (tiny)
    const rowBiases = Array.from({ length: B }, (_, b) => groupBias(kb, { first: b, count: 1 }, T) as tf.Tensor1D | null);

    // Heads a hook watches: whole [T, T] scores per batch row, stacked into [B, nh, T, T] for the hooks.
    let watchedProbs: tf.Tensor2D | null = null; // [B·nh·T, T]
    if (h1 > h0) {
      const nh = h1 - h0;
      ensureHeap(new Array<number>(3).fill(4 * B * nh * T * T), `materialising attention scores and probabilities of layer ${i} (${B}×${nh} heads × ${T}²)`,
        'Ask for fewer heads (fast.hookHeads), fewer layers, or a shorter input.');
      const pieces: tf.Tensor[] = [];
      for (let b = 0; b < B; b++) {
        for (let h = h0; h < h1; h++) {
          pieces.push(tf.tidy(() => matMulBias(sliceRows(q, h * N + b * T, T), cols(sliceRows(kT, h * d, d), b * T, T), rowBiases[b]!)));
        }
      }
      const scores0 = tf.reshape(tf.concat(pieces, 0), [B, nh, T, T]);
      tf.dispose(pieces);
      const scores = hooks.point(at('attention.self.hook_scores'), scores0);
      const probs0 = softmax(scores); // over keys
      const probs = hooks.point(at('attention.self.hook_probs'), probs0);
      if (scores !== scores0 || probs !== probs0) replaced = true;
      watchedProbs = tf.reshape(probs, [B * nh * T, T]) as tf.Tensor2D;
    }

    // with scores made and none of their hooks replacing them: the kernel's context (without scores this
    // repeats the call above, which gave null: no heap room, or a replaced q, k or v)
    const context = kernelContext();
    if (context) return context;
    const watched = new Map<number, tf.Tensor2D>(); // head -> context [N, d]
    for (let h = h0; watchedProbs && h < h1; h++) {
      watched.set(h, tf.tidy(() => {
        const ctx = [];
        for (let b = 0; b < B; b++) ctx.push(matMulBias(sliceRows(watchedProbs!, (b * (h1 - h0) + h - h0) * T, T), sliceRows(v, h * N + b * T, T), null));
        return tf.concat(ctx, 0) as tf.Tensor2D;
      }));
    }
    const groups = attentionGroups(B, T, opts);
    const biases = groups.map((g) => (g.count === 1 ? rowBiases[g.first]! : groupBias(kb, g, T)));

    // Every other head: per group of rows, blocks of query rows; scores and probabilities die with their block.
    const perHead: tf.Tensor[] = [];
    for (let h = 0; h < heads; h++) {
      const done = watched.get(h);
      if (done) {
        perHead.push(done);
        continue;
      }
      perHead.push(tf.tidy(() => {
        const kTh = sliceRows(kT, h * d, d); // [d, N]
        const pieces: tf.Tensor[] = [];
        groups.forEach((g, gi) => {
          const W = g.count * T;
          const first = g.first * T;
          const kTg = cols(kTh, first, W);
          const vg = sliceRows(v, h * N + first, W);
          const n = queryBlockRows(W, opts);
          for (let r0 = 0; r0 < W; r0 += n) {
            const m = Math.min(n, W - r0);
            const bias = biases[gi]!;
            pieces.push(attend(sliceRows(q, h * N + first + r0, m), kTg, vg, bias && bias.rank === 2 ? rows(bias as tf.Tensor2D, r0, m) : bias));
          }
        });
        return tf.concat(pieces, 0); // [N, d]
      }));
    }
    return tf.reshape(tf.concat(perHead, 1), [B, T, H]) as tf.Tensor3D; // heads merged back, token-major
  });
}
