/**
 * A multi-threaded wasm backend in Node: the threaded-SIMD build of `@tensorflow/tfjs-backend-wasm`
 * (Emscripten pthreads, XNNPACK's matMul spread over a pthreadpool), created by threaded-module.ts
 * (why we create it, not the package: see there). This file says where its files are in Node:
 *
 * - the glue `wasm-out/tfjs-backend-wasm-threaded-simd.js` is a CommonJS module, `require`d;
 * - pthread workers would be started from Blob URLs, which Node's `worker_threads` cannot load: each
 *   gets a `data:` URL instead, a tiny ES module that gives the worker a `require` and evaluates the
 *   package's own worker source, which then loads the glue from disk (`mainScriptUrlOrBlob`).
 *
 * The pool's workers are unref'd so they do not keep the process alive. If anything fails the
 * package's own single-threaded backend is used and `wasmThreadsStatus().fallbackReason` says why.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { installHeapCopyKernels } from './heap-ops.js';
import { wasmBackendCreated } from './heap-load.js';
import { registerThreadedWasm, type ThreadedBuild } from './threaded-module.js';

const require = createRequire(import.meta.url);

/** What the wasm backend ended up with. */
export interface WasmThreadsStatus {
  /** Threads requested (1 = the package's plain single-threaded backend). */
  requested: number;
  /** Threads XNNPACK's pool runs (`getThreadsCount()`); undefined before the backend exists. */
  actual?: number;
  /** Set when the threaded build could not be used and the single-threaded one took over. */
  fallbackReason?: string;
}

const status: WasmThreadsStatus = { requested: 1 };

export function wasmThreadsStatus(): Readonly<WasmThreadsStatus> {
  return status;
}

/** Threads used when none are asked for: env BGE_M3_WASM_THREADS, else the cores Node may use (max 8). */
export function defaultWasmThreads(): number {
  const env = process.env.BGE_M3_WASM_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1 || n > 8) throw new Error(`BGE_M3_WASM_THREADS must be an integer in [1, 8], got '${env}'`);
    return n;
  }
  return Math.max(1, Math.min(8, availableParallelism()));
}

/** The ES module every pthread worker starts from (see above). */
function workerBootstrap(gluePath: string, workerSource: string): URL {
  // The package stores the worker source in a template literal, so its "\n" escapes became real
  // newlines inside string literals; re-escape them, as the package does before making its Blob.
  const source = workerSource.replace(/\n/g, '\\n');
  const boot = [
    "import { createRequire } from 'node:module';",
    `globalThis.require = createRequire(${JSON.stringify(pathToFileURL(gluePath).href)});`,
    `globalThis.__filename = ${JSON.stringify(gluePath)};`,
    `(0, eval)(${JSON.stringify(source)});`,
  ].join('\n');
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`);
}

/** The threaded build's files, from the package's folder on disk. */
async function threadedBuild(): Promise<ThreadedBuild> {
  const dir = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'wasm-out');
  const glue = join(dir, 'tfjs-backend-wasm-threaded-simd.js');
  const { wasmWorkerContents } = require(join(dir, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string };
  return {
    factory: require(glue) as ThreadedBuild['factory'],
    glue,
    // Emscripten passes this straight to `new Worker(...)`, which accepts a data: URL object.
    worker: workerBootstrap(glue, wasmWorkerContents),
    wasm: await WebAssembly.compile(await readFile(join(dir, 'tfjs-backend-wasm-threaded-simd.wasm'))),
    locate: (path) => join(dir, path),
  };
}

/**
 * Makes the next initialisation of the `wasm` backend use `threads` threads (1: the package's own
 * single-threaded backend). Must run before the backend is first used; once it exists its thread
 * count is fixed and this only reports it.
 */
export async function prepareWasmBackend(threads: number): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  installHeapCopyKernels(); // tf.gather and tf.slice as copies inside the heap (see heap-ops.ts)
  if (wasmBackendCreated()) {
    status.actual = wasm.getThreadsCount();
    return;
  }
  status.requested = threads;
  if (threads <= 1) return;
  registerThreadedWasm(wasm, threads, threadedBuild, (reason) => { status.fallbackReason = reason; }, (mod) => {
    // The pool's threads are running workers; let the process exit without waiting for them.
    for (const worker of mod.PThread.runningWorkers as Array<{ unref(): void }>) worker.unref();
  });
}

/** Records the thread count of the initialised backend. */
export async function noteWasmThreads(): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  status.actual = wasm.getThreadsCount();
}
