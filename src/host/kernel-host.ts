/**
 * What the FMA kernel (src/kernels) needs of its host, in Node: a pool thread is a `worker_threads`
 * Worker running kernels/worker.js, and V8 11.3 (Node 20) has relaxed SIMD behind a flag a library may
 * set at run time. The browser build takes kernel-host.browser.ts (package.json `browser` field);
 * everything else of the pool (the control block, exec, waiting) is kernels/pool.ts, shared.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { KernelWorker, WorkerInit } from '../kernels/pool.js';

/** The worker's module file: plain JavaScript in src/kernels/ and (copied by tsc) dist/kernels/. */
const WORKER_URL = new URL('../kernels/worker.js', import.meta.url);

/**
 * Starts thread `init.tid` of the pool. `onError` hears of a worker that could not load or died
 * (Node reports it on the event loop; a job's own failure comes back through the control block).
 */
export function spawnKernelWorker(init: WorkerInit, onError: (message: string) => void): KernelWorker {
  // execArgv []: the parent's flags (a test runner's loaders, `node -e`'s --input-type) are not the worker's.
  const w = new Worker(WORKER_URL, { execArgv: [], workerData: init });
  w.on('error', (e) => onError(`worker ${init.tid} (${WORKER_URL.href}): ${e.message}`));
  w.unref(); // never keeps the process alive
  return { terminate: () => void w.terminate() };
}

/** Turns on relaxed SIMD where V8 has it behind a flag (Node 20); must run before compiling a module that uses it. */
export function allowRelaxedSimd(): void {
  try {
    (createRequire(import.meta.url)('node:v8') as { setFlagsFromString(flag: string): void }).setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch { /* not V8's Node */ }
}

/** Why this runtime has no SharedArrayBuffer (the kernel's threads share the wasm heap). */
export function noSharedMemoryReason(): string {
  return 'no SharedArrayBuffer in this runtime';
}

/** The runtime, for messages (its V8 version). */
export function runtimeName(): string {
  return `V8 ${process.versions.v8 ?? '?'}`;
}
