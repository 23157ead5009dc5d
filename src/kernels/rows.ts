/**
 * LayerNorm and softmax over rows, on the kernel's threads (rows.wat: `$layernorm`, `$softmax`), as
 * tfjs kernels of the wasm backend. Each is one job: the rows are split between the threads, and a
 * row is read from L1 on its later passes, so each op costs about one pass over memory instead of
 * the 6–9 elementwise ops (each one thread, each a pass) of the tfjs formulation.
 */
import * as tf from '@tensorflow/tfjs-core';
import { heapAddress, type WasmBackend as Backend } from '../runtime/heap-load.js';
import { checkArgs, contextFor, kernelActive, SMALL_JOB } from './gemm.js';
import { writeJob, type JobFields } from './job.js';

export const LAYER_NORM_KERNEL = 'BgeM3LayerNorm';
export const SOFTMAX_KERNEL = 'BgeM3Softmax';


/** Writes a row job (see rows.wat) and runs it on every thread. */
function runRows(backend: Backend, op: 'layerNorm' | 'softmax', f: JobFields<'rows'> & { rows: number; cols: number }): void {
  const ctx = contextFor(op === 'layerNorm' ? LAYER_NORM_KERNEL : SOFTMAX_KERNEL, backend);
  writeJob(ctx.pool.memory.buffer, ctx.job, op, 'rows', f);
  ctx.pool.exec(ctx.job, f.rows * f.cols < SMALL_JOB / 4 ? 1 : undefined);
}

function layerNormKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { x, residual, gamma, beta } = args.inputs as Record<string, tf.TensorInfo | undefined>;
  const eps = (args.attrs as { eps: number }).eps;
  const backend = args.backend as Backend;
  if (!x || x.shape.length !== 2) throw new RangeError(`${LAYER_NORM_KERNEL}: x must be 2-D, got [${x?.shape}]`);
  const [rows, cols] = x.shape as [number, number];
  checkArgs(LAYER_NORM_KERNEL, { x, residual, gamma, beta }, { residual: [rows, cols], gamma: [cols], beta: [cols] });
  if (cols % 4 !== 0 || cols === 0) throw new RangeError(`${LAYER_NORM_KERNEL}: the row length must be a positive multiple of 4, got ${cols}`);
  if (!(eps >= 0)) throw new RangeError(`${LAYER_NORM_KERNEL}: eps must be >= 0, got ${eps}`);
  const out = backend.makeOutput([rows, cols], 'float32');
  if (rows === 0) return out;
  const at = (t: tf.TensorInfo | undefined): number => (t ? heapAddress(backend, t) : 0);
  runRows(backend, 'layerNorm', { x: at(x), rows, residual: at(residual), cols, gamma: at(gamma), y: at(out), beta: at(beta), eps });
  return out;
}

function softmaxKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const { x } = args.inputs as Record<string, tf.TensorInfo | undefined>;
  const backend = args.backend as Backend;
  if (!x || x.shape.length !== 2) throw new RangeError(`${SOFTMAX_KERNEL}: x must be 2-D, got [${x?.shape}]`);
  checkArgs(SOFTMAX_KERNEL, { x });
  const [rows, cols] = x.shape as [number, number];
  const out = backend.makeOutput([rows, cols], 'float32');
  if (rows === 0 || cols === 0) return out;
  runRows(backend, 'softmax', { x: heapAddress(backend, x), rows, cols, y: heapAddress(backend, out) });
  return out;
}

tf.registerKernel({ kernelName: LAYER_NORM_KERNEL, backendName: 'wasm', kernelFunc: layerNormKernel as unknown as tf.KernelFunc });
tf.registerKernel({ kernelName: SOFTMAX_KERNEL, backendName: 'wasm', kernelFunc: softmaxKernel as unknown as tf.KernelFunc });

/**
 * LayerNorm(x + residual) over the last axis of x [rows, H] (torch.nn.LayerNorm: biased variance),
 * or null when the kernel cannot run or H is not a multiple of 4.
 */
export function layerNormRows(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number, residual?: tf.Tensor2D): tf.Tensor2D | null {
  if (x.shape[1] % 4 !== 0 || !kernelActive()) return null;
  const inputs: tf.NamedTensorMap = residual ? { x, residual, gamma, beta } : { x, gamma, beta };
  return tf.engine().runKernel(LAYER_NORM_KERNEL, inputs, { eps }) as tf.Tensor2D;
}

/** softmax over the last axis of x [rows, cols], or null when the kernel cannot run. */
export function softmaxRows(x: tf.Tensor2D): tf.Tensor2D | null {
  if (!kernelActive()) return null;
  return tf.engine().runKernel(SOFTMAX_KERNEL, { x }, {}) as tf.Tensor2D;
}
