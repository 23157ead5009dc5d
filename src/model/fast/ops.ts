/**
 * The fast op set (../ops.ts `OpSet`), `forward: 'fast'`: the same primitives as `textbookOps`, on
 * the FMA kernel (src/kernels) where it runs, which reads x [N, in] and W [out, in] as they are, adds
 * the bias (and GELU) in its store, splits LayerNorm and softmax rows over its threads, and runs the
 * attention core as one job that never holds a head's [T, T] scores. Where the kernel cannot run
 * (no relaxed SIMD: see kernels/feature.ts) the textbook op runs, except for the attention core,
 * which is blocked (./attention.ts) so that long inputs still fit (on a GPU backend: the textbook core). The work after the attention runs
 * on chunks of token rows (`byRows`), which bounds the [n, I] temporaries.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { XLMRobertaConfig } from '../../config.js';
import { kernelActive, kernelAttention, layerNormRows, linearRowMajor, linearsRowMajor, softmaxRows } from '../../kernels/index.js';
import { sliceRows } from '../../runtime/heap-ops.js';
import type { AttentionOptions } from '../attention.js';
import { gelu, layerNorm, linear, textbookOps, type OpSet } from '../ops.js';
import { tensorsOnGpu } from '../../backend.js';
import type { LayerNormParams, Linear } from '../params.js';
import { attentionGroups, blockedAttention, queryBlockRows, type BlockOptions } from './attention.js';

/** Knobs of the fast path; results do not depend on them (tests hold every setting to the reference). */
export interface FastOptions extends BlockOptions, AttentionOptions {
  /**
   * Token rows per chunk of the work after the attention (default 1,024 on the kernel, which blocks
   * its operands for the cache itself; 256 on XNNPACK, which re-reads what it packs once per 4 weight
   * rows), and of the projections on XNNPACK.
   */
  readonly chunkTokens?: number;
}

const KERNEL_CHUNK_TOKENS = 1024;
const XNNPACK_CHUNK_TOKENS = 256;

/** Token rows per chunk: `chunkTokens`, or the default of the path that runs. */
function rowChunk(opts: FastOptions): number {
  return Math.max(1, opts.chunkTokens ?? (kernelActive() ? KERNEL_CHUNK_TOKENS : XNNPACK_CHUNK_TOKENS));
}

/** `f` on chunks of `chunk` rows of `xs` ([N, ·] each), the pieces concatenated: [N, ·]. */
function byRows(xs: readonly tf.Tensor2D[], f: (xs: tf.Tensor2D[]) => tf.Tensor2D, chunk: number): tf.Tensor2D {
  const N = xs[0]!.shape[0];
  if (N <= chunk) return f([...xs]); // one chunk: no copy
  const pieces: tf.Tensor2D[] = [];
  for (let r0 = 0; r0 < N; r0 += chunk) {
    const n = Math.min(chunk, N - r0);
    pieces.push(tf.tidy(() => f(xs.map((x) => sliceRows(x, r0, n)))));
  }
  const y = tf.concat(pieces, 0);
  tf.dispose(pieces);
  return y;
}

/** x [..., in] as rows [N, in], `f` of them [N, out] back to [..., out]. */
function onRows(x: tf.Tensor, f: (x2: tf.Tensor2D) => tf.Tensor2D | null): tf.Tensor | null {
  const x2 = tf.reshape(x, [-1, x.shape[x.shape.length - 1]!]) as tf.Tensor2D;
  const y = f(x2);
  x2.dispose();
  if (!y) return null;
  const out = tf.reshape(y, [...x.shape.slice(0, -1), y.shape[1]]);
  y.dispose();
  return out;
}

/** Linears of one x [N, in] on XNNPACK: per chunk of rows, xᵀ once, then W·xᵀ + b each (the weights as stored): [N, out] each. */
function linearsXnnpack(x2: tf.Tensor2D, ps: readonly Linear[], chunk: number): tf.Tensor2D[] {
  const N = x2.shape[0];
  const parts = ps.map(() => [] as tf.Tensor2D[]);
  for (let r0 = 0; r0 < N; r0 += chunk) {
    const n = Math.min(chunk, N - r0);
    tf.tidy(() => {
      const xT = tf.transpose(n === N ? x2 : sliceRows(x2, r0, n)) as tf.Tensor2D; // [in, n], packed once by XNNPACK for every Linear
      return ps.map((p) => tf.transpose(tf.add(tf.matMul(p.weight, xT), tf.reshape(p.bias, [-1, 1]))) as tf.Tensor2D); // [n, out]
    }).forEach((y, j) => parts[j]!.push(y));
  }
  return parts.map((ys) => {
    if (ys.length === 1) return ys[0]!;
    const y = tf.concat(ys, 0);
    tf.dispose(ys);
    return y;
  });
}

/** softmax over the last axis of rows, on the kernel's row job where it runs. */
function softmax2d(x: tf.Tensor2D): tf.Tensor2D {
  return softmaxRows(x) ?? tf.softmax(x);
}

/** The fast op set for one call's options. */
export function fastOps(opts: FastOptions = {}): OpSet {
  const chunk = rowChunk(opts);
  const knobs = opts.blockSize !== undefined || opts.groupTokens !== undefined; // the caller asked for the blocked core
  const linearRows = (x: tf.Tensor, p: Linear) => onRows(x, (x2) => linearRowMajor(x2, p.weight, p.bias)) ?? linear(x, p);
  const normRows = (x: tf.Tensor, p: LayerNormParams, eps: number, residual: tf.Tensor): tf.Tensor => {
    const H = x.shape[x.shape.length - 1]!;
    return tf.tidy(() => {
      const k = layerNormRows(tf.reshape(x, [-1, H]), p.weight, p.bias, eps, tf.reshape(residual, [-1, H])); // LN(x + residual), one job
      return k ? tf.reshape(k, x.shape) : layerNorm(tf.add(x, residual), p, eps);
    });
  };
  return {
    linears(x, ps) {
      const inDim = x.shape[x.shape.length - 1]!;
      return tf.tidy(() => {
        const x2 = tf.reshape(x, [-1, inDim]) as tf.Tensor2D;
        const ys = linearsRowMajor(x2, ps) ?? linearsXnnpack(x2, ps, chunk); // the kernel packs x once for all of them
        return ys.map((y) => tf.reshape(y, [...x.shape.slice(0, -1), y.shape[1]]));
      });
    },
    linearGelu: (x, p) => onRows(x, (x2) => linearRowMajor(x2, p.weight, p.bias, 'gelu')) ?? tf.tidy(() => gelu(linear(x, p))),
    addAndNorm: (h, residual, p, eps) => tf.tidy(() => normRows(linearRows(h, p.dense), p.LayerNorm, eps, residual)),
    attention(q, k, v, keyBias, heads) {
      const [B, T, H] = q.shape;
      if (kernelActive() && !knobs) {
        const flat = [q, k, v].map((t) => tf.reshape(t, [B * T, H]) as tf.Tensor2D);
        const out = kernelAttention(flat[0]!, flat[1]!, flat[2]!, keyBias, B, heads, 1 / Math.sqrt(H / heads)); // [B·T, H]
        tf.dispose(flat);
        if (out) {
          const y = tf.reshape(out, [B, T, H]) as tf.Tensor3D;
          out.dispose();
          return y;
        }
        // null: no heap room for the job's scratch; the blocked core holds less at a time
      }
      // On a GPU every head's scores at once is the normal shape of the work, and the blocked core
      // would read the key bias back to the host synchronously.
      if (tensorsOnGpu()) return textbookOps.attention(q, k, v, keyBias, heads);
      return blockedAttention(q, k, v, keyBias, heads, softmax2d, opts);
    },
    byRows: (xs, f) => byRows(xs, f, chunk),
  };
}

const blocks = (n: number, bytes: number): number[] => new Array<number>(n).fill(bytes);

/**
 * The heap blocks one layer holds at its peak with `fastOps(opts)` on a [B, T] batch, generously.
 * In chunks (`whole` false): a few [B·T, H] (x, q, k, v, the context, the output; the attention job's
 * scratch with the kernel), one block of one head's scores and probabilities (blocked core), one
 * chunk's [n, I] temporaries. Whole (a hook inside the layer): what the layer's tidy keeps.
 */
export function fastPeakBlocks(B: number, T: number, c: XLMRobertaConfig, opts: FastOptions, whole: boolean): number[] {
  const N = B * T;
  const W = attentionGroups(B, T, opts)[0]!.count * T; // tokens of the largest attention unit
  const scores = blocks(2, 4 * queryBlockRows(W, opts) * W);
  if (whole) return [...blocks(3, 4 * N * c.intermediate_size), ...blocks(10, 4 * N * c.hidden_size), ...scores];
  const chunk = Math.min(N, rowChunk(opts));
  return [...blocks(kernelActive() ? 7 : 6, 4 * N * c.hidden_size), ...scores, ...blocks(3, 4 * chunk * c.intermediate_size)];
}

/** The same for `textbookOps`: everything the layer's tidy keeps and every head's scores at once (four [B, heads, T, T]). */
export function textbookPeakBlocks(B: number, T: number, c: XLMRobertaConfig): number[] {
  const N = B * T;
  return [...blocks(3, 4 * N * c.intermediate_size), ...blocks(10, 4 * N * c.hidden_size), ...blocks(4, 4 * B * c.num_attention_heads * T * T)];
}

/** The embeddings of a [B, T] batch: the gathered rows, their sum and the LayerNorm temporaries. */
export function embeddingsPeakBlocks(B: number, T: number, c: XLMRobertaConfig): number[] {
  return blocks(6, 4 * B * T * c.hidden_size);
}
