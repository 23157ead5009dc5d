/**
 * The GEMM kernel as a tfjs kernel of the wasm backend (`BgeM3Gemm`): C = A·B (+ bias), computed by
 * gemm.wat on the backend's own heap, so inputs are read and the output written in place.
 *
 * Attributes choose the layouts the forward needs without any transpose op:
 * - `transposeB`: B is given as [N, K] (row-major x of a Linear, k of q·kᵀ) instead of [K, N];
 * - `transposeC`: C is stored as [N, M] instead of [M, N].
 * A Linear y = x·Wᵀ + b with W as stored ([out, in]) is A = W, B = x (transposeB), C = yᵀ stored
 * transposed, i.e. y [N, out] token-major, with the bias added in the store: one pass, no copies of
 * the weights, no transposes of the activations. The only extra memory is one pack buffer of at
 * most PACK_BYTES (B is packed chunk by chunk of its columns).
 */
import * as tf from '@tensorflow/tfjs-core';
import { envVar } from '../host/env.js';
import { heapAddress, type WasmBackend as Backend } from '../runtime/heap-load.js';
import { kernelSupport } from './feature.js';
import { KernelPool } from './pool.js';
import { JOB_BYTES, MAX_THREADS, writeJob } from './job.js';

export const GEMM_KERNEL = 'BgeM3Gemm';

/** B is packed this many bytes at a time (its columns in chunks): bounds the pack buffer. */
const PACK_BYTES = 4 << 20;
/** Jobs smaller than this (multiply-adds, or row elements) run on the calling thread alone. */
export const SMALL_JOB = 1 << 19;
/** Panels of packed B one row tile of A meets in a row: about what stays in L2 alongside A's rows. */
const GROUP_BYTES = 512 << 10;

/** What runs the kernel on one backend: its worker pool, job struct and pack buffer. */
export interface Context {
  backend: Backend; pool: KernelPool; job: number; pack: number; packBytes: number;
  /** Per-thread scratch of the attention job (see attention.ts), grown on demand. */
  scratch: number; scratchBytes: number;
}

let context: Context | null = null;
let unavailable: string | undefined; // why the kernel cannot run on the current backend
/** A backend whose pool could not start (a worker did not load): XNNPACK runs there, and `reason` says why. */
let broken: { backend: Backend; reason: string } | null = null;
let enabled = envVar('BGE_M3_KERNEL') !== 'off';

/** The context for the active backend, made on first use; null (and `unavailable` set) when it cannot run. */
export function activeContext(): Context | null {
  if (!enabled) {
    unavailable = 'disabled (setKernelEnabled(false))';
    return null;
  }
  if (tf.getBackend() !== 'wasm') {
    unavailable = `backend is '${tf.getBackend()}', not wasm`;
    return null;
  }
  const backend = tf.backend() as Backend;
  if (broken?.backend === backend) {
    unavailable = broken.reason;
    return null;
  }
  if (context?.backend === backend) {
    const failure = context.pool.failure();
    if (!failure) return context;
    closeKernels();
    broken = { backend, reason: `its worker pool failed (${failure})` };
    unavailable = broken.reason;
    return null;
  }
  closeKernels(); // a new backend: the old pool's memory is gone
  const s = kernelSupport();
  if (!s.module) {
    unavailable = s.reason;
    return null;
  }
  const memory = backend.wasm.wasmMemory;
  if (!memory || !(memory.buffer instanceof SharedArrayBuffer)) {
    unavailable = "the wasm backend is the single-threaded build (its memory is not shared)";
    return null;
  }
  const threads = Math.max(1, Math.min(MAX_THREADS, backend.wasm.tfjs?.getThreadsCount?.() ?? 1));
  const job = backend.wasm._malloc(JOB_BYTES) >>> 0; // Emscripten returns addresses past 2 GiB as negative numbers
  if (!job) throw new Error('GEMM kernel: the wasm heap has no room for the job struct');
  new Uint8Array(memory.buffer, job, JOB_BYTES).fill(0);
  context = { backend, pool: new KernelPool(s.module, memory, threads), job, pack: 0, packBytes: 0, scratch: 0, scratchBytes: 0 };
  unavailable = undefined;
  return context;
}

/**
 * Makes the kernel's context for the active backend and waits until its workers have started, so
 * that the first job finds them ready; where they cannot start (a worker's file does not load) the
 * kernel stays off for this backend, XNNPACK runs, and `kernelStatus().path` says why. Needed where
 * workers start only while the caller yields (a page's main thread: see pool.ts); harmless elsewhere.
 */
export async function startKernels(): Promise<void> {
  const ctx = activeContext();
  if (!ctx) return;
  try {
    await ctx.pool.whenStarted();
  } catch (e) {
    if (context === ctx) closeKernels();
    broken = { backend: ctx.backend, reason: `its worker pool did not start: ${(e as Error).message}` };
  }
}

/** Stops the kernel's workers and frees its buffers (the next use starts them again). */
export function closeKernels(): void {
  if (!context) return;
  context.pool.close();
  try {
    context.backend.wasm._free(context.job);
    if (context.pack) context.backend.wasm._free(context.pack);
    if (context.scratch) context.backend.wasm._free(context.scratch);
  } catch { /* the backend is already gone */ }
  context = null;
}

/** Turns the kernel on or off for the following calls (off: callers take the XNNPACK path; the pool stays). */
export function setKernelEnabled(on: boolean): void {
  enabled = on;
}

export function kernelEnabled(): boolean {
  return enabled;
}

export interface KernelStatus {
  /** True when linearRowMajor / kernelMatMul run the FMA kernel on the active backend. */
  active: boolean;
  /** Threads of the kernel's pool (main thread included). */
  threads?: number;
  /** One line for bench output and the inspection page header. */
  path: string;
}

export function kernelStatus(): KernelStatus {
  const c = activeContext();
  if (c) return { active: true, threads: c.pool.threads, path: `relaxed-SIMD FMA GEMM (src/kernels), ${c.pool.threads} thread${c.pool.threads > 1 ? 's' : ''}` };
  return { active: false, path: `XNNPACK matMul (FMA kernel off: ${unavailable ?? 'unknown'})` };
}

/** True when the kernel will run for the next call. */
export function kernelActive(): boolean {
  return activeContext() !== null;
}

/** The context a kernel function runs on; throws when the kernel cannot run on `backend`. */
export function contextFor(kernel: string, backend: Backend): Context {
  const ctx = activeContext();
  if (!ctx || ctx.backend !== backend) throw new Error(`${kernel}: the kernel cannot run here (${unavailable ?? 'another backend'})`);
  return ctx;
}

/**
 * Grows the context's pack or scratch buffer to at least `bytes` (+ 64 for aligning it); false when
 * the heap has no room (the buffer is then empty).
 */
export function reserve(ctx: Context, buffer: 'pack' | 'scratch', bytes: number): boolean {
  const size = buffer === 'pack' ? 'packBytes' : 'scratchBytes';
  if (ctx[size] >= bytes) return true;
  if (ctx[buffer]) ctx.backend.wasm._free(ctx[buffer]);
  const p = ctx.backend.wasm._malloc(bytes + 64) >>> 0;
  ctx[buffer] = p;
  ctx[size] = p ? bytes : 0;
  return p !== 0;
}

/** Throws unless each given tensor is float32 and, where `shapes` names it, of that shape (a kernel's arguments). */
export function checkArgs(kernel: string, tensors: Record<string, tf.TensorInfo | undefined>, shapes: Record<string, readonly number[]> = {}): void {
  for (const [name, t] of Object.entries(tensors)) {
    if (!t) continue;
    if (t.dtype !== 'float32') throw new TypeError(`${kernel}: ${name} must be float32, got ${t.dtype}`);
    const s = shapes[name];
    if (s && !tf.util.arraysEqual(t.shape, [...s])) throw new RangeError(`${kernel}: ${name} must be [${s.join(', ')}], got [${t.shape.join(', ')}]`);
  }
}

interface GemmArgs {
  a: number; lda: number; b: number; ldb: number; bT: boolean; c: number; ldc: number; cT: boolean; bias: number;
  M: number; N: number; K: number; gelu: boolean;
}

/**
 * Runs C = A·B (+ bias) on heap addresses, B's columns chunk by chunk so the pack buffer stays small.
 * `packed`: the previous call packed this same B whole (one chunk), so the pack buffer holds it already.
 */
function gemmOnHeap(ctx: Context, g: GemmArgs, packed = false): void {
  const chunk = Math.max(8, Math.floor(PACK_BYTES / (4 * g.K) / 8) * 8); // columns of B per chunk
  const packBytes = 4 * g.K * 8 * Math.ceil(Math.min(chunk, g.N) / 8);
  if (!reserve(ctx, 'pack', packBytes)) throw new Error(`GEMM kernel: the wasm heap has no room for a ${packBytes}-byte pack buffer`);
  const group = Math.max(1, Math.floor(GROUP_BYTES / (32 * g.K)));
  for (let n0 = 0; n0 < g.N; n0 += chunk) {
    const n = Math.min(chunk, g.N - n0);
    writeJob(ctx.pool.memory.buffer, ctx.job, 'gemm', 'gemm', {
      a: g.a, lda: g.lda,
      b: g.b + 4 * n0 * (g.bT ? g.ldb : 1), ldb: g.ldb, bT: g.bT ? 1 : 0,
      c: g.c + 4 * n0 * (g.cT ? g.ldc : 1), ldc: g.ldc, cT: g.cT ? 1 : 0,
      bias: g.bias && !g.cT ? g.bias + 4 * n0 : g.bias, // bias runs along C's stored columns
      M: g.M, N: n, K: g.K, pack: ctx.pack, panelsPerGroup: group,
      activation: g.gelu ? 1 : 0, // no scale (0)
      packed: packed && g.N <= chunk ? 1 : 0, // B is in the pack buffer already, or not yet
    });
    ctx.pool.exec(ctx.job, g.M * n * g.K < SMALL_JOB ? 1 : undefined);
  }
}

/** `activation` 'gelu': exact GELU (erf form) applied to every output after the bias, in the store. */
interface GemmAttrs { transposeB: boolean; transposeC: boolean; activation?: 'gelu' | 'none' }

function gemmKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { a, b, bias } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo; bias?: tf.TensorInfo };
  const { transposeB, transposeC, activation = 'none' } = args.attrs as unknown as GemmAttrs;
  if (activation !== 'gelu' && activation !== 'none') throw new RangeError(`${GEMM_KERNEL}: activation must be 'gelu' or 'none', got '${String(activation)}'`);
  const backend = args.backend as Backend;
  checkArgs(GEMM_KERNEL, { a, b, bias });
  if (a.shape.length !== 2 || b.shape.length !== 2) throw new RangeError(`${GEMM_KERNEL}: a and b must be 2-D, got [${a.shape}] and [${b.shape}]`);
  const [M, K] = a.shape as [number, number];
  const [N, Kb] = (transposeB ? b.shape : [b.shape[1], b.shape[0]]) as [number, number];
  if (K !== Kb) throw new RangeError(`${GEMM_KERNEL}: inner sizes differ: a [${a.shape}], b [${b.shape}]${transposeB ? ' (transposed)' : ''}`);
  const cols = transposeC ? M : N;
  checkArgs(GEMM_KERNEL, { bias }, { bias: [cols] });
  const out = backend.makeOutput(transposeC ? [N, M] : [M, N], 'float32');
  if (M === 0 || N === 0) return out;
  const ctx = contextFor(GEMM_KERNEL, backend);
  const c = heapAddress(backend, out);
  const biasAt = bias ? heapAddress(backend, bias) : 0;
  if (K === 0) { // an empty sum: C is the bias (or 0) on every row
    const view = new Float32Array(ctx.pool.memory.buffer, c, M * N);
    const bv = bias ? new Float32Array(ctx.pool.memory.buffer, biasAt, cols) : null;
    if (activation === 'gelu') throw new RangeError(`${GEMM_KERNEL}: activation 'gelu' with an empty inner dimension (K = 0)`);
    for (let r = 0; r < M * N / cols; r++) for (let j = 0; j < cols; j++) view[r * cols + j] = bv ? bv[j]! : 0;
    return out;
  }
  gemmOnHeap(ctx, {
    a: heapAddress(backend, a), lda: K,
    b: heapAddress(backend, b), ldb: transposeB ? K : N, bT: transposeB,
    c, ldc: transposeC ? M : N, cT: transposeC, bias: biasAt, M, N, K, gelu: activation === 'gelu',
  });
  return out;
}

tf.registerKernel({ kernelName: GEMM_KERNEL, backendName: 'wasm', kernelFunc: gemmKernel as unknown as tf.KernelFunc });

export const LINEARS_KERNEL = 'BgeM3Linears';

/**
 * Several Linears of the same x (inputs x, w0, b0, w1, b1, …; attribute `count`): [N, out_i] each.
 * The same as one `linearRowMajor` per Linear, bit for bit, but x is packed once for all of them
 * when it fits the pack buffer whole (up to 1,024 tokens of 1,024 features).
 */
function linearsKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo[] {
  const inputs = args.inputs as Record<string, tf.TensorInfo | undefined>;
  const count = (args.attrs as unknown as { count: number }).count;
  const backend = args.backend as Backend;
  const x = inputs.x;
  if (!x || x.dtype !== 'float32' || x.shape.length !== 2) throw new TypeError(`${LINEARS_KERNEL}: x must be a float32 [N, in] tensor, got ${x ? `${x.dtype} [${x.shape}]` : 'none'}`);
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`${LINEARS_KERNEL}: count must be a positive integer, got ${count}`);
  const [N, K] = x.shape as [number, number];
  const layers = Array.from({ length: count }, (_, i) => {
    const w = inputs[`w${i}`];
    const b = inputs[`b${i}`];
    if (!w || w.dtype !== 'float32' || w.shape.length !== 2 || w.shape[1] !== K) {
      throw new RangeError(`${LINEARS_KERNEL}: w${i} must be a float32 [out, ${K}] tensor (x is [${x.shape}]), got ${w ? `${w.dtype} [${w.shape}]` : 'none'}`);
    }
    if (b && (b.dtype !== 'float32' || b.shape.length !== 1 || b.shape[0] !== w.shape[0])) {
      throw new RangeError(`${LINEARS_KERNEL}: b${i} must be a float32 [${w.shape[0]}] tensor, got ${b.dtype} [${b.shape}]`);
    }
    return { w, b, out: w.shape[0]! };
  });
  if (N === 0 || K === 0) { // nothing to pack: one at a time (empty, or the bias on every row)
    return layers.map((l) => gemmKernel({ inputs: l.b ? { a: l.w, b: x, bias: l.b } : { a: l.w, b: x }, backend, attrs: { transposeB: true, transposeC: true } }));
  }
  const ctx = contextFor(LINEARS_KERNEL, backend);
  const outs = layers.map((l) => backend.makeOutput([N, l.out], 'float32'));
  const b = heapAddress(backend, x);
  let packed = false; // has an earlier Linear of this call packed x?
  layers.forEach((l, i) => {
    if (l.out === 0) return; // an empty output: no GEMM, so nothing packed either
    gemmOnHeap(ctx, {
      a: heapAddress(backend, l.w), lda: K, b, ldb: K, bT: true,
      c: heapAddress(backend, outs[i]!), ldc: l.out, cT: true, bias: l.b ? heapAddress(backend, l.b) : 0, M: l.out, N, K, gelu: false,
    }, packed);
    packed = true;
  });
  return outs;
}

tf.registerKernel({ kernelName: LINEARS_KERNEL, backendName: 'wasm', kernelFunc: linearsKernel as unknown as tf.KernelFunc });

/**
 * y_i = x·W_iᵀ + b_i for several Linears of the same x [N, in] (W_i as stored, [out_i, in]): [N, out_i]
 * each, exactly as `linearRowMajor` computes them, with x packed once; null when the kernel cannot run.
 */
export function linearsRowMajor(x: tf.Tensor2D, linears: ReadonlyArray<{ weight: tf.Tensor2D; bias?: tf.Tensor1D }>): tf.Tensor2D[] | null {
  if (!kernelActive()) return null;
  const inputs: tf.NamedTensorMap = { x };
  linears.forEach((l, i) => {
    inputs[`w${i}`] = l.weight;
    if (l.bias) inputs[`b${i}`] = l.bias;
  });
  return tf.engine().runKernel(LINEARS_KERNEL, inputs, { count: linears.length }) as unknown as tf.Tensor2D[];
}

/**
 * y = x·Wᵀ + b for x [N, in] and W as stored ([out, in]): [N, out] (with `activation` 'gelu':
 * gelu(x·Wᵀ + b), computed in the store), or null when the kernel cannot run (the caller then takes
 * its XNNPACK path; `kernelStatus().path` says why).
 */
export function linearRowMajor(x: tf.Tensor2D, weight: tf.Tensor2D, bias?: tf.Tensor1D, activation: 'gelu' | 'none' = 'none'): tf.Tensor2D | null {
  if (!kernelActive()) return null;
  const inputs: tf.NamedTensorMap = bias ? { a: weight, b: x, bias } : { a: weight, b: x };
  return tf.engine().runKernel(GEMM_KERNEL, inputs, { transposeB: true, transposeC: true, activation }) as tf.Tensor2D;
}

/**
 * a·b (+ bias on every row) for a [M, K] and b [K, N] (or b [N, K] with transposeB): [M, N], or null
 * when the kernel cannot run.
 */
export function kernelMatMul(a: tf.Tensor2D, b: tf.Tensor2D, opts: { transposeB?: boolean; bias?: tf.Tensor1D } = {}): tf.Tensor2D | null {
  if (!kernelActive()) return null;
  const inputs: tf.NamedTensorMap = opts.bias ? { a, b, bias: opts.bias } : { a, b };
  return tf.engine().runKernel(GEMM_KERNEL, inputs, { transposeB: opts.transposeB ?? false, transposeC: false }) as tf.Tensor2D;
}
