/**
 * Backend selection. `wasm` (default) ships inside its npm package and runs XNNPACK's matMul on
 * several threads (see runtime/wasm-threads.ts); `cpu` is pure JS (slow, a fallback); `tensorflow` is
 * `@tensorflow/tfjs-node`, an optional peer a user may install.
 */
import * as tf from '@tensorflow/tfjs-core';
import { defaultWasmThreads, noteWasmThreads, prepareWasmBackend } from './runtime/wasm-threads.js';

export const BACKENDS = ['wasm', 'cpu', 'tensorflow'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendOptions {
  /**
   * wasm only: threads for matMul (default: env BGE_M3_WASM_THREADS, else the cores Node may use, up
   * to 8; 1 = the package's single-threaded build). Fixed once the wasm backend has been created.
   */
  threads?: number;
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
  else {
    const pkg = '@tensorflow/tfjs-node';
    try {
      await import(pkg);
    } catch (e) {
      throw new Error(`backend 'tensorflow' needs the optional package ${pkg} (npm install ${pkg}); it could not be loaded: ${(e as Error).message}`);
    }
  }
  if (!(await tf.setBackend(name))) throw new Error(`backend '${name}' failed to initialise`);
  await tf.ready();
  if (name === 'wasm') await noteWasmThreads();
}
