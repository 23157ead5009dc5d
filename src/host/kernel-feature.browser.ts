/**
 * kernels/feature.ts in a browser. The relaxed-SIMD FMA kernel (kernels/gemm.ts) runs its GEMM on a
 * pool of Node `worker_threads` sharing the wasm heap (kernels/pool.ts); a browser would need that pool
 * on Web Workers. Until then the kernel reports itself unavailable here and the wasm backend's own
 * XNNPACK matMul runs (threaded when the page is crossOriginIsolated).
 */
import type * as Feature from '../kernels/feature.js';

export const kernelSupport: typeof Feature.kernelSupport = () => ({
  reason: "in a browser: the FMA kernel's thread pool is built on Node's worker_threads (no Web Worker pool yet); XNNPACK runs",
});
