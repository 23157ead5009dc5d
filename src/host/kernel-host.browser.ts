/**
 * kernel-host.ts in a browser: a pool thread is a module Web Worker running kernel-worker.browser.js,
 * and relaxed SIMD is on or off as the browser ships it (no flag to set). The expression
 * `new Worker(new URL('./kernel-worker.browser.js', import.meta.url), { type: 'module' })` is written
 * literally so that bundlers (Vite, webpack) find the worker and bundle it; in dist/browser/ (the
 * prebuilt bundle) `npm run build` puts a self-contained copy of it next to index.js.
 */
import type * as NodeHost from './kernel-host.js';

export const spawnKernelWorker: typeof NodeHost.spawnKernelWorker = (init, onError) => {
  const url = new URL('./kernel-worker.browser.js', import.meta.url);
  const w = new Worker(new URL('./kernel-worker.browser.js', import.meta.url), { type: 'module', name: `bge-m3 kernel thread ${init.tid}` });
  w.onerror = (e) => {
    e.preventDefault();
    // A module worker that fails to load (404, a network or syntax error) gives an event with no message.
    onError(`worker ${init.tid} (${url.href}): ${e.message || 'the module did not load (missing file, network error or bad JavaScript)'}`);
  };
  w.onmessageerror = () => onError(`worker ${init.tid} (${url.href}): the module and memory could not be sent to it`);
  w.postMessage(init);
  return { terminate: () => w.terminate() };
};

export const allowRelaxedSimd: typeof NodeHost.allowRelaxedSimd = () => {};

export const noSharedMemoryReason: typeof NodeHost.noSharedMemoryReason = () => (globalThis.crossOriginIsolated === false
  ? 'the page is not crossOriginIsolated (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp), so there is no SharedArrayBuffer and the wasm backend runs single-threaded'
  : 'no SharedArrayBuffer in this browser');

export const runtimeName: typeof NodeHost.runtimeName = () => globalThis.navigator?.userAgent ?? 'this browser';
