/**
 * runtime/wasm-threads.ts in a browser. In a crossOriginIsolated page (served with COOP/COEP headers,
 * so SharedArrayBuffer exists) the wasm backend is the threaded-SIMD build, created by
 * runtime/threaded-module.ts from the files named in browser/wasm-files.ts; otherwise the package
 * creates its SIMD build on one thread. `wasmThreadsStatus()` tells which path runs.
 * Once it exists, the FMA kernel's pool (kernels/pool.ts, on Web Workers) is started and awaited.
 */
import type * as NodeThreads from '../runtime/wasm-threads.js';
import { installHeapCopyKernels } from '../runtime/heap-ops.js';
import { wasmBackendCreated } from '../runtime/heap-load.js';
import { registerThreadedWasm, type ThreadedBuild } from '../runtime/threaded-module.js';
import { WASM_FILES } from '../browser/wasm-files.js';
// @ts-expect-error -- a CommonJS file of the package, without typings: `exports.wasmWorkerContents`, the pthread worker's source
import { wasmWorkerContents } from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js';
import { startKernels } from '../kernels/gemm.js';

const status: NodeThreads.WasmThreadsStatus = { requested: 1 };

export const wasmThreadsStatus: typeof NodeThreads.wasmThreadsStatus = () => status;

/** All the cores the browser reports (up to 8) when threads are possible, else 1. */
export const defaultWasmThreads: typeof NodeThreads.defaultWasmThreads = () =>
  (globalThis.crossOriginIsolated ? Math.max(1, Math.min(8, globalThis.navigator?.hardwareConcurrency ?? 1)) : 1);

/**
 * Where the .wasm files are: `setWasmFolder(url)` before loading (a folder URL ending in `/`), else
 * browser/wasm-files.ts (next to the bundle, or wherever the app's bundler put them).
 */
let wasmFolder: string | undefined;
export function setWasmFolder(url: string): void {
  wasmFolder = url;
}

/** Fetches `url`, or says plainly which file of the backend is missing and how to provide it. */
async function fetchWasmFile(url: string, method: 'GET' | 'HEAD' = 'GET'): Promise<Response> {
  let r: Response;
  try {
    r = await fetch(url, { method });
  } catch (e) {
    throw new Error(`backend 'wasm': cannot fetch ${url} (${(e as Error).message})`);
  }
  if (!r.ok) {
    throw new Error(`backend 'wasm': ${url} answered HTTP ${r.status}: serve @tensorflow/tfjs-backend-wasm's files `
      + "(dist/browser/*.wasm and tfjs-backend-wasm-threaded-simd.js of this package) there, or call setWasmFolder('<folder URL>/') before loading");
  }
  return r;
}

/** Runs the glue (a classic script) once; returns its factory. */
async function loadGlue(url: string): Promise<ThreadedBuild['factory']> {
  const g = globalThis as { WasmBackendModuleThreadedSimd?: ThreadedBuild['factory']; importScripts?: (u: string) => void };
  if (!g.WasmBackendModuleThreadedSimd) {
    if (typeof document !== 'undefined') {
      await new Promise<void>((resolve, reject) => {
        const script = document.createElement('script');
        script.src = url;
        script.onload = () => resolve();
        script.onerror = () => reject(new Error(`backend 'wasm': the script ${url} did not load (see the network panel)`));
        document.head.append(script);
      });
    } else if (g.importScripts) {
      g.importScripts(url); // a classic worker
    } else {
      (0, eval)(await (await fetchWasmFile(url)).text()); // a module worker: global code, as a script would run
    }
  }
  if (!g.WasmBackendModuleThreadedSimd) throw new Error(`backend 'wasm': ${url} did not define WasmBackendModuleThreadedSimd`);
  return g.WasmBackendModuleThreadedSimd;
}

/** The threaded build's pieces in this page. */
async function pageBuild(files: typeof WASM_FILES): Promise<ThreadedBuild> {
  const glue = files['tfjs-backend-wasm-threaded-simd.js'];
  const r = await fetchWasmFile(files['tfjs-backend-wasm-threaded-simd.wasm']);
  const wasm = r.headers.get('content-type')?.startsWith('application/wasm')
    ? await WebAssembly.compileStreaming(r)
    : await WebAssembly.compile(await r.arrayBuffer());
  // The package keeps the worker source in a template literal, so its "\n" escapes became real
  // newlines inside string literals; re-escape them, as the package does before making its Blob.
  const source = (wasmWorkerContents as string).replace(/\n/g, '\\n');
  return {
    factory: await loadGlue(glue),
    glue,
    worker: URL.createObjectURL(new Blob([source], { type: 'text/javascript' })),
    wasm,
    locate: (path) => new URL(path, glue).href,
  };
}

export const prepareWasmBackend: typeof NodeThreads.prepareWasmBackend = async (threads) => {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  installHeapCopyKernels();
  if (wasmBackendCreated()) {
    status.actual = wasm.getThreadsCount();
    return;
  }
  status.requested = threads;
  const files = wasmFolder === undefined ? WASM_FILES
    : Object.fromEntries(Object.keys(WASM_FILES).map((f) => [f, new URL(f, wasmFolder).href])) as typeof WASM_FILES;
  wasm.setWasmPaths(files); // for the package's own init (one thread, or the fallback); it ignores the glue's entry
  if (threads > 1 && !globalThis.crossOriginIsolated) {
    status.fallbackReason = 'the page is not crossOriginIsolated (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp): one thread';
  }
  if (threads > 1 && globalThis.crossOriginIsolated) {
    registerThreadedWasm(wasm, threads, () => pageBuild(files), (reason) => { status.fallbackReason = reason; });
  } else {
    // tfjs would only log "both async and sync fetching of the wasm failed": ask first, to say which file.
    await fetchWasmFile(files['tfjs-backend-wasm-simd.wasm'], 'HEAD');
  }
};

export const noteWasmThreads: typeof NodeThreads.noteWasmThreads = async () => {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  status.actual = wasm.getThreadsCount();
  // The FMA kernel's Web Workers start only while this thread yields: start them now, before the first job.
  await startKernels();
};
