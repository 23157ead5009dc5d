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

export const BACKENDS = ['wasm', 'cpu', 'tensorflow', 'webgpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** The packages that provide the `tensorflow` backend, tried in this order. */
export const TENSORFLOW_PACKAGES = ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'] as const;

let tensorflowFrom: string | undefined;

/** The package the `tensorflow` backend was loaded from, once `useBackend('tensorflow')` has run. */
export function tensorflowPackage(): string | undefined {
  return tensorflowFrom;
}

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

/** Imports the first package of TENSORFLOW_PACKAGES that loads; an error naming each one's failure when none does. */
async function loadTensorflow(onInfo: (message: string) => void): Promise<void> {
  if (tensorflowFrom !== undefined) return;
  const failures: string[] = [];
  for (const pkg of TENSORFLOW_PACKAGES) {
    try {
      await import(pkg);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const missing = err.code === 'ERR_MODULE_NOT_FOUND' && err.message.includes(`'${pkg}'`);
      failures.push(`${pkg}: ${missing ? 'not installed' : `installed but failed to load (${err.message.split('\n')[0]})`}`);
      continue;
    }
    tensorflowFrom = pkg;
    onInfo(`bge-m3-tfjs: backend 'tensorflow' is ${pkg}`);
    return;
  }
  throw new Error(`backend 'tensorflow' needs one of the optional packages ${TENSORFLOW_PACKAGES.join(' or ')} (npm install ${TENSORFLOW_PACKAGES[0]}, or ${TENSORFLOW_PACKAGES[1]} for CUDA); none could be loaded: ${failures.join('; ')}`);
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
