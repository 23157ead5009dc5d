/**
 * A multi-threaded wasm backend in Node.
 *
 * `@tensorflow/tfjs-backend-wasm` ships a threaded-SIMD build (Emscripten pthreads, XNNPACK's matMul
 * spread over a pthreadpool) but never uses it in Node, for three reasons, each handled here:
 *
 * 1. The flag `WASM_HAS_MULTITHREAD_SUPPORT` is hard-wired to false under Node (tfjs issue #3830),
 *    so its own init always picks the single-threaded build. We do not go through that init: the
 *    `wasm` backend is re-registered with a factory that instantiates the threaded glue
 *    (`wasm-out/tfjs-backend-wasm-threaded-simd.js`, a CommonJS module) and wraps the module in the
 *    package's own exported `BackendWasm`, so every registered wasm kernel works unchanged.
 * 2. Its pthread workers would be started from Blob URLs, which Node's `worker_threads` cannot load.
 *    Our `locateFile` hands Emscripten a `data:` URL instead: a tiny ES module that gives the worker
 *    a `require` and evaluates the package's own worker source, which then loads the glue from disk
 *    (`mainScriptUrlOrBlob` is the glue's path, so no Blob is involved either).
 * 3. The C++ side caps the pool at half of `emscripten_num_logical_cores()` (it assumes 2-way SMT),
 *    which is 1 thread on a 2-vCPU machine. `instantiateWasm` lets us provide that import, reporting
 *    2 × the requested threads so that `setThreadsCount(n)` really yields n.
 *
 * The pool's workers are unref'd so they do not keep the process alive, and the idle workers
 * Emscripten pre-spawns (8) are terminated once the pool has its threads. If anything here fails the
 * package's own single-threaded backend is used and `wasmThreadsStatus().fallbackReason` says why.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { installHeapCopyKernels } from './heap-ops.js';

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

interface EmscriptenModule {
  cwrap: (name: string, ret: string | null, args: string[]) => (...a: number[]) => number;
  PThread: { runningWorkers: Array<{ unref(): void }>; unusedWorkers: Array<{ terminate(): void }> };
  tfjs?: unknown;
}

type Factory = (config: Record<string, unknown>) => Promise<EmscriptenModule>;

/** The ES module every pthread worker starts from (see point 2 above). */
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

async function createThreadedModule(threads: number): Promise<EmscriptenModule> {
  const dir = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'wasm-out');
  const gluePath = join(dir, 'tfjs-backend-wasm-threaded-simd.js');
  const factory = require(gluePath) as Factory;
  const { wasmWorkerContents } = require(join(dir, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string };
  const compiled = await WebAssembly.compile(await readFile(join(dir, 'tfjs-backend-wasm-threaded-simd.wasm')));
  const workerUrl = workerBootstrap(gluePath, wasmWorkerContents);
  let fail: (e: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => { fail = reject; });
  const mod = await Promise.race([failed, factory({
    // Emscripten passes this straight to `new Worker(...)`, which accepts a data: URL object.
    locateFile: (path: string) => (path.endsWith('.worker.js') ? workerUrl : join(dir, path)),
    mainScriptUrlOrBlob: gluePath,
    instantiateWasm: (
      imports: { env: Record<string, unknown> },
      receive: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
    ) => {
      imports.env.emscripten_num_logical_cores = () => 2 * threads; // the C++ side halves it
      WebAssembly.instantiate(compiled, imports as WebAssembly.Imports).then((instance) => receive(instance, compiled), fail);
      return {};
    },
    onAbort: (what: unknown) => fail(new Error(`wasm module aborted: ${String(what)}`)),
  })]);
  const w = mod.cwrap.bind(mod);
  mod.tfjs = {
    init: w('init', null, []),
    initWithThreadsCount: w('init_with_threads_count', null, ['number']),
    getThreadsCount: w('get_threads_count', 'number', []),
    registerTensor: w('register_tensor', null, ['number', 'number', 'number']),
    disposeData: w('dispose_data', null, ['number']),
    dispose: w('dispose', null, []),
  };
  return mod;
}

/**
 * Makes the next initialisation of the `wasm` backend use `threads` threads (1: the package's own
 * single-threaded backend). Must run before the backend is first used; once it exists its thread
 * count is fixed and this only reports it.
 */
export async function prepareWasmBackend(threads: number): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  installHeapCopyKernels(); // tf.gather and tf.slice as copies inside the heap (see heap-ops.ts)
  if (tf.findBackend('wasm') !== null) {
    status.actual = wasm.getThreadsCount();
    return;
  }
  status.requested = threads;
  if (threads <= 1) return;
  const engine = tf.engine();
  const original = engine.findBackendFactory('wasm');
  if (!original) throw new Error('the wasm backend is not registered (is @tensorflow/tfjs-backend-wasm installed?)');
  wasm.setThreadsCount(threads);
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', async () => {
    let mod: EmscriptenModule;
    try {
      mod = await createThreadedModule(threads);
    } catch (e) {
      status.fallbackReason = `threaded wasm build failed to start: ${(e as Error).message}`;
      wasm.setThreadsCount(1);
      return original();
    }
    const backend = new wasm.BackendWasm(mod as unknown as ConstructorParameters<typeof wasm.BackendWasm>[0]);
    // The pool's threads are running workers; let the process exit without waiting for them.
    for (const worker of mod.PThread.runningWorkers) worker.unref();
    // Emscripten pre-spawns 8 workers; the pool took what it needs, the rest only cost memory.
    for (const worker of mod.PThread.unusedWorkers.splice(0)) worker.terminate();
    return backend;
  }, 2);
}

/** Records the thread count of the initialised backend. */
export async function noteWasmThreads(): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  status.actual = wasm.getThreadsCount();
}
