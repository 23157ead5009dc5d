/**
 * The wasm backend on its threaded-SIMD build, created by us rather than by the package's own init;
 * the same in Node (runtime/wasm-threads.ts) and in pages (host/wasm-threads.browser.ts), which only
 * say where the build's files are (`ThreadedBuild`).
 *
 * Why not let `@tensorflow/tfjs-backend-wasm` create it:
 * - Node: it never picks the threaded build there (tfjs issue #3830), and its pthread workers start
 *   from Blob URLs, which `worker_threads` cannot load.
 * - Pages: its pthread workers run the glue's factory from `factory.toString()` (a Blob of the source
 *   as the app's bundler left it). A minifier that knows the factory's enclosing variable
 *   `_scriptDir` exists rewrites its `typeof _scriptDir !== "undefined"` guard to a bare reference,
 *   which throws in the worker, where that variable does not exist (`e is not defined`: Vite's and
 *   webpack's production builds). Here each worker loads the package's own glue file instead.
 * - Both: the C++ side caps its pool at half of `emscripten_num_logical_cores()` (it assumes 2-way
 *   SMT): 1 thread on a 2-core machine. `instantiateWasm` provides that import as 2 × threads.
 * The module is wrapped in the package's exported `BackendWasm`, so every wasm kernel works unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';

/** The parts of the Emscripten module created here that we use. */
export interface EmscriptenModule {
  cwrap: (name: string, ret: string | null, args: string[]) => (...a: number[]) => number;
  PThread: { runningWorkers: unknown[]; unusedWorkers: Array<{ terminate(): void }> };
  tfjs?: unknown;
}

type Factory = (config: Record<string, unknown>) => Promise<EmscriptenModule>;

/** Where one host finds the threaded build's pieces. */
export interface ThreadedBuild {
  /** The Emscripten factory of the glue (`tfjs-backend-wasm-threaded-simd.js`). */
  factory: Factory;
  /** The glue, as each pthread worker loads it (`importScripts` in a page, `require` in Node). */
  glue: string;
  /** What `new Worker(...)` gets for a pthread worker. */
  worker: string | URL;
  /** The compiled `tfjs-backend-wasm-threaded-simd.wasm`. */
  wasm: WebAssembly.Module;
  /** Emscripten's locateFile for any other file it asks for. */
  locate(path: string): string;
}

/** Instantiates the threaded module on `threads` threads and gives it the `tfjs` API BackendWasm calls. */
export async function instantiateThreaded(build: ThreadedBuild, threads: number): Promise<EmscriptenModule> {
  let fail: (e: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => { fail = reject; });
  const mod = await Promise.race([failed, build.factory({
    locateFile: (path: string) => (path.endsWith('.worker.js') ? build.worker : build.locate(path)),
    mainScriptUrlOrBlob: build.glue,
    instantiateWasm: (
      imports: { env: Record<string, unknown> },
      receive: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
    ) => {
      imports.env.emscripten_num_logical_cores = () => 2 * threads; // the C++ side halves it
      WebAssembly.instantiate(build.wasm, imports as WebAssembly.Imports).then((instance) => receive(instance, build.wasm), fail);
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

type WasmPackage = typeof import('@tensorflow/tfjs-backend-wasm');

/**
 * Re-registers the `wasm` backend so that its creation makes the threaded module from `build()`.
 * If that fails, the package's own backend is created instead and `onFallback` is told why.
 */
export function registerThreadedWasm(
  wasm: WasmPackage, threads: number, build: () => Promise<ThreadedBuild>,
  onFallback: (reason: string) => void, onCreated: (mod: EmscriptenModule) => void = () => {},
): void {
  const original = tf.engine().findBackendFactory('wasm');
  if (!original) throw new Error('the wasm backend is not registered (is @tensorflow/tfjs-backend-wasm installed?)');
  wasm.setThreadsCount(threads);
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', async () => {
    let mod: EmscriptenModule;
    try {
      mod = await instantiateThreaded(await build(), threads);
    } catch (e) {
      onFallback(`threaded wasm build failed to start: ${(e as Error).message}`);
      wasm.setThreadsCount(1);
      return original();
    }
    // Its constructor starts XNNPACK's pool, on workers Emscripten pre-spawned (8): in a page a new
    // worker would not start while the main thread waits for it.
    const backend = new wasm.BackendWasm(mod as unknown as ConstructorParameters<WasmPackage['BackendWasm']>[0]);
    onCreated(mod);
    // The pool took what it needs; the other pre-spawned workers only cost memory.
    for (const worker of mod.PThread.unusedWorkers.splice(0)) worker.terminate();
    return backend;
  }, 2);
}
