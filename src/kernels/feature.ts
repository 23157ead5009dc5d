/**
 * Can this runtime run the FMA kernel? It needs WebAssembly relaxed SIMD (`f32x4.relaxed_madd`) and
 * threads (a shared memory). V8 ships relaxed SIMD from 11.4 (Node 22, Chrome 114); Node 20's V8 11.3
 * has it behind `--experimental-wasm-relaxed-simd`, a flag a library may set at run time as long as it
 * does so before compiling a module that uses it (the Node host does: host/kernel-host.ts). Everything
 * else (another runtime, an older V8, a page without crossOriginIsolation) falls back to the tfjs-wasm
 * backend's own XNNPACK path. The same in Node and in browsers.
 */
import { envVar } from '../host/env.js';
import { allowRelaxedSimd, noSharedMemoryReason, runtimeName } from '../host/kernel-host.js';
import { WASM_BASE64 } from './kernel.wasm.js';

/** The smallest module using relaxed_madd: (v128, v128, v128) -> v128. */
const PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, // type: (v128 v128 v128) -> v128
  0x03, 0x02, 0x01, 0x00, // one function of that type
  0x0a, 0x0d, 0x01, 0x0b, 0x00, // code section: one body of 11 bytes, no locals
  0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x85, 0x02, 0x0b, // local.get 0 1 2; f32x4.relaxed_madd; end
]);

export interface KernelSupport {
  /** The compiled GEMM module, when this runtime can run it. */
  module?: WebAssembly.Module;
  /** Why not, otherwise. */
  reason?: string;
}

let support: KernelSupport | undefined;

function relaxedSimd(): boolean {
  if (WebAssembly.validate(PROBE)) return true;
  allowRelaxedSimd();
  return WebAssembly.validate(PROBE);
}

/** The bytes of base64 text (atob: in Node and in browsers). */
function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
}

/** Detects once (env BGE_M3_KERNEL=off forces the fallback) and compiles the kernel when it can run. */
export function kernelSupport(): KernelSupport {
  if (support) return support;
  if (envVar('BGE_M3_KERNEL') === 'off') support = { reason: 'BGE_M3_KERNEL=off' };
  else if (typeof SharedArrayBuffer === 'undefined') support = { reason: noSharedMemoryReason() };
  else if (!relaxedSimd()) support = { reason: `WebAssembly relaxed SIMD is not available (${runtimeName()})` };
  else {
    try {
      support = { module: new WebAssembly.Module(fromBase64(WASM_BASE64)) };
    } catch (e) {
      support = { reason: `the GEMM module did not compile: ${(e as Error).message}` };
    }
  }
  return support;
}
