/**
 * Where a page finds `@tensorflow/tfjs-backend-wasm`'s files: its three .wasm builds and the threaded
 * build's Emscripten glue (loaded by every pthread worker: see runtime/threaded-module.ts). This
 * module is compiled into dist/browser/, where `npm run build` also copies those files and writes the
 * bundle: so the same `new URL('./…', import.meta.url)` names the file next to the prebuilt bundle
 * (dist/browser/index.js) and, for a bundler reading the package through its `browser` condition,
 * next to this module. Vite and webpack see these literal `new URL` calls, copy the files into the
 * app's build and rewrite the URLs; no `setWasmFolder` is needed.
 */
export const WASM_FILES = {
  'tfjs-backend-wasm.wasm': new URL('./tfjs-backend-wasm.wasm', import.meta.url).href,
  'tfjs-backend-wasm-simd.wasm': new URL('./tfjs-backend-wasm-simd.wasm', import.meta.url).href,
  'tfjs-backend-wasm-threaded-simd.wasm': new URL('./tfjs-backend-wasm-threaded-simd.wasm', import.meta.url).href,
  /** The threaded build's glue (a classic script defining `WasmBackendModuleThreadedSimd`). */
  'tfjs-backend-wasm-threaded-simd.js': new URL('./tfjs-backend-wasm-threaded-simd.js', import.meta.url).href,
};
