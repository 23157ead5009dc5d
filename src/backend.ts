/**
 * Backend selection. `wasm` (default) ships inside its npm package and runs on several threads (see
 * runtime/wasm-threads.ts): the Linears on the project's FMA kernel (src/kernels) where relaxed SIMD
 * runs, else on XNNPACK's matMul; `cpu` is pure JS (slow, a fallback); `tensorflow` is
 * TensorFlow's C library through `@tensorflow/tfjs-node` or `@tensorflow/tfjs-node-gpu`, optional peers
 * a user may install (whichever is installed; the first of TENSORFLOW_PACKAGES that loads); `webgpu`
 * (`@tensorflow/tfjs-backend-webgpu`) runs in web pages only.
 */
import * as tf from '@tensorflow/tfjs-core';
import { defaultWasmThreads, noteWasmThreads, prepareWasmBackend } from './runtime/wasm-threads.js';
import { prepareWebgpuBackend } from './host/gpu.js';
import { loadTensorflow } from './host/tensorflow.js';

export { TENSORFLOW_PACKAGES, tensorflowPackage } from './host/tensorflow.js';

export const BACKENDS = ['wasm', 'cpu', 'tensorflow', 'webgpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendOptions {
  /**
   * wasm only: threads for matMul (default: env BGE_M3_WASM_THREADS, else the cores Node may use, up
   * to 8; 1 = the package's single-threaded build). Fixed once the wasm backend has been created.
   */
  threads?: number;
  /**
   * tensorflow only: told which package provides the backend when it is first loaded (default:
   * console.error, so that a command's stdout stays clean).
   */
  onInfo?: (message: string) => void;
}

/** Backends whose tensors live on a GPU: reading one synchronously is a round trip to the device. */
const GPU_BACKENDS: ReadonlySet<string> = new Set(['webgpu', 'webgl']);

/** True when the active backend keeps tensors on a GPU (code on host arrays then avoids it; see scores.ts). */
export function tensorsOnGpu(): boolean {
  return GPU_BACKENDS.has(tf.getBackend());
}

export async function useBackend(name: BackendName = 'wasm', opts: BackendOptions = {}): Promise<void> {
  if (!(BACKENDS as readonly string[]).includes(name)) {
    throw new Error(`unknown backend '${String(name)}': expected one of ${BACKENDS.join(', ')}`);
  }
  const threads = opts.threads ?? (name === 'wasm' ? defaultWasmThreads() : 1);
  if (!Number.isInteger(threads) || threads < 1 || threads > 8) {
    throw new RangeError(`threads must be an integer in [1, 8], got ${JSON.stringify(opts.threads)}`);
  }
  if (tf.getBackend() === name) return;
  if (name === 'wasm') await prepareWasmBackend(threads);
  else if (name === 'cpu') await import('@tensorflow/tfjs-backend-cpu');
  else if (name === 'webgpu') await prepareWebgpuBackend();
  else await loadTensorflow(opts.onInfo ?? ((m) => console.error(m)));
  if (!(await tf.setBackend(name))) throw new Error(`backend '${name}' failed to initialise`);
  await tf.ready();
  if (name === 'wasm') await noteWasmThreads();
}
