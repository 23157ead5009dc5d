/**
 * Multi-head self-attention as one job of the kernel's threads (attention.wat `$attention`), registered as
 * the wasm backend's `BgeM3Attention`: for every batch row b and head h,
 *
 *   out[b, :, head h] = softmax(scale · q_h k_hᵀ + keyBias[b]) · v_h
 *
 * with q, k, v and out token-major [B·T, H] (head h in columns h·d … (h+1)·d), exactly as the
 * projections write them. The heads are never sliced out, transposed or concatenated: the GEMMs read
 * them with a row stride of H. Work items are (row, head); the threads take them from an atomic
 * counter. Per item a thread packs k_h and v_h once, then goes through the queries in blocks of R
 * rows, keeping one block of scores [R, T] in its own scratch: the scores of a whole head are never
 * materialised (R is chosen to keep the block, with the packed k_h and v_h, in L2).
 */
import * as tf from '@tensorflow/tfjs-core';
import { heapAddress, type WasmBackend as Backend } from '../runtime/heap-load.js';
import { activeContext, checkArgs, contextFor, reserve } from './gemm.js';
import { writeJob } from './job.js';

export const ATTENTION_KERNEL = 'BgeM3Attention';

/** Bytes of one work item's score block [R, T]: about what stays in L2 next to the packed keys. */
const SCORE_BLOCK_BYTES = 512 << 10;

/** Query rows per work item at T keys: a multiple of 4 (the GEMM's row tile) unless T is smaller. */
export function attentionRows(T: number): number {
  if (T <= 4) return T;
  return Math.min(T, Math.max(4, Math.floor(SCORE_BLOCK_BYTES / (4 * T) / 4) * 4));
}

/** Scratch bytes one thread needs (see attention.wat `$attention`): job structs, packed keys or values, one score block. */
function scratchPerThread(T: number, d: number, R: number): number {
  const up8 = (n: number) => Math.ceil(n / 8) * 8;
  const bytes = 576 + 4 * (d * up8(T) + T * up8(d)) + 4 * R * T;
  return Math.ceil(bytes / 64) * 64;
}

interface AttentionAttrs { batch: number; heads: number; scale: number }

function attentionKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { q, k, v, keyBias } = args.inputs as Record<string, tf.TensorInfo | undefined>;
  const { batch: B, heads, scale } = args.attrs as unknown as AttentionAttrs;
  const backend = args.backend as Backend;
  if (!q || !k || !v) throw new RangeError(`${ATTENTION_KERNEL}: q, k and v are required`);
  if (q.shape.length !== 2) throw new RangeError(`${ATTENTION_KERNEL}: q must be [B·T, H], got [${q.shape}]`);
  checkArgs(ATTENTION_KERNEL, { q, k, v, keyBias }, { k: q.shape, v: q.shape });
  const [N, H] = q.shape as [number, number];
  if (!Number.isInteger(B) || B < 1 || N % B !== 0) throw new RangeError(`${ATTENTION_KERNEL}: batch ${B} does not divide the ${N} rows of q`);
  if (!Number.isInteger(heads) || heads < 1 || H % heads !== 0) throw new RangeError(`${ATTENTION_KERNEL}: ${heads} heads do not divide the hidden size ${H}`);
  if (!Number.isFinite(scale) || scale === 0) throw new RangeError(`${ATTENTION_KERNEL}: scale must be a finite non-zero number, got ${scale}`);
  const T = N / B;
  if (keyBias && tf.util.sizeFromShape(keyBias.shape) !== N) throw new RangeError(`${ATTENTION_KERNEL}: keyBias must hold B·T = ${N} values, got [${keyBias.shape}]`);
  const out = backend.makeOutput([N, H], 'float32');
  if (N === 0) return out;
  const ctx = contextFor(ATTENTION_KERNEL, backend);
  const d = H / heads;
  const R = attentionRows(T);
  const per = scratchPerThread(T, d, R);
  if (!reserve(ctx, 'scratch', per * ctx.pool.threads)) throw new Error(`${ATTENTION_KERNEL}: the wasm heap has no room for ${per * ctx.pool.threads} bytes of attention scratch`);
  writeJob(ctx.pool.memory.buffer, ctx.job, 'attention', 'attention', {
    q: heapAddress(backend, q), k: heapAddress(backend, k), v: heapAddress(backend, v), out: heapAddress(backend, out),
    keyBias: keyBias ? heapAddress(backend, keyBias) : 0,
    batch: B, T, heads, d, H, rows: R, scale,
    scratch: Math.ceil(ctx.scratch / 64) * 64, scratchPerThread: per,
  });
  const items = B * heads;
  ctx.pool.exec(ctx.job, items > 1 ? undefined : 1);
  return out;
}

tf.registerKernel({ kernelName: ATTENTION_KERNEL, backendName: 'wasm', kernelFunc: attentionKernel as unknown as tf.KernelFunc });

/**
 * softmax(scale · q_h k_hᵀ + keyBias[b]) · v_h for every batch row b and head h, with q, k, v
 * token-major [B·T, H] and keyBias holding B·T values (0 for a real key, −inf for padding; any
 * shape, e.g. [B, 1, 1, T]): [B·T, H], heads merged. Null when the kernel cannot run, or when the
 * heap has no room for its scratch (the caller then takes its tfjs path).
 */
export function kernelAttention(
  q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, keyBias: tf.Tensor | null, batch: number, heads: number, scale: number,
): tf.Tensor2D | null {
  const ctx = activeContext();
  if (!ctx) return null;
  const [N, H] = q.shape;
  const T = N / batch;
  if (!Number.isInteger(T) || H % heads !== 0) return null; // the kernel would refuse it; let the caller's path report
  const R = attentionRows(T);
  if (!reserve(ctx, 'scratch', scratchPerThread(T, H / heads, R) * ctx.pool.threads)) return null;
  const inputs: tf.NamedTensorMap = keyBias ? { q, k, v, keyBias } : { q, k, v };
  return tf.engine().runKernel(ATTENTION_KERNEL, inputs, { batch, heads, scale }) as tf.Tensor2D;
}
