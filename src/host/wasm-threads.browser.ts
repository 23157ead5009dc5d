/**
 * runtime/wasm-threads.ts in a browser. Here `@tensorflow/tfjs-backend-wasm` picks its build itself:
 * the threaded-SIMD one when the page is crossOriginIsolated (served with COOP/COEP headers, so
 * SharedArrayBuffer exists), else SIMD on one thread. This module points it at its .wasm files and
 * asks for the thread count; `wasmThreadsStatus()` tells which path runs.
 *
 * As in Node (runtime/wasm-threads.ts, point 3), the C++ side caps its pool at half of
 * `emscripten_num_logical_cores()`, which the glue reads from `navigator.hardwareConcurrency`: 1 thread
 * on a 2-core machine. While the backend initialises, that property reports 2 × the threads asked for.
 * Once it has, the FMA kernel's pool (kernels/pool.ts, on Web Workers) is started and awaited.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as NodeThreads from '../runtime/wasm-threads.js';
import { installHeapCopyKernels } from '../runtime/heap-ops.js';
import { startKernels } from '../kernels/gemm.js';

const status: NodeThreads.WasmThreadsStatus = { requested: 1 };

export const wasmThreadsStatus: typeof NodeThreads.wasmThreadsStatus = () => status;

/** All the cores the browser reports (up to 8) when threads are possible, else 1. */
export const defaultWasmThreads: typeof NodeThreads.defaultWasmThreads = () =>
  (globalThis.crossOriginIsolated ? Math.max(1, Math.min(8, globalThis.navigator?.hardwareConcurrency ?? 1)) : 1);

/**
 * Where the .wasm files are: `setWasmFolder(url)` before loading, else the folder this module was
 * loaded from (dist/browser/, where `npm run build` puts them next to the bundle).
 */
let wasmFolder: string | undefined;
export function setWasmFolder(url: string): void {
  wasmFolder = url;
}

export const prepareWasmBackend: typeof NodeThreads.prepareWasmBackend = async (threads) => {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  installHeapCopyKernels();
  if (tf.findBackend('wasm') !== null) {
    status.actual = wasm.getThreadsCount();
    return;
  }
  status.requested = threads;
  if (threads > 1 && !globalThis.crossOriginIsolated) {
    status.fallbackReason = 'the page is not crossOriginIsolated (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp): one thread';
  }
  wasm.setWasmPaths(wasmFolder ?? new URL('./', import.meta.url).href);
  wasm.setThreadsCount(threads);
  if (threads > 1 && globalThis.crossOriginIsolated && globalThis.navigator) {
    Object.defineProperty(globalThis.navigator, 'hardwareConcurrency', { value: 2 * threads, configurable: true });
  }
};

export const noteWasmThreads: typeof NodeThreads.noteWasmThreads = async () => {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  // The own property set above shadowed Navigator.prototype's getter: remove it.
  if (globalThis.navigator && Object.prototype.hasOwnProperty.call(globalThis.navigator, 'hardwareConcurrency')) {
    delete (globalThis.navigator as { hardwareConcurrency?: number }).hardwareConcurrency;
  }
  status.actual = wasm.getThreadsCount();
  // The FMA kernel's Web Workers start only while this thread yields: start them now, before the first job.
  await startKernels();
};
