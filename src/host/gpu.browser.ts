/**
 * The `webgpu` backend in a page: `@tensorflow/tfjs-backend-webgpu`, when the browser offers WebGPU
 * (`navigator.gpu`; headless Chromium gives a SwiftShader adapter, a CPU emulation, with
 * --enable-unsafe-webgpu --enable-unsafe-swiftshader).
 */
import type * as NodeGpu from './gpu.js';

export const prepareWebgpuBackend: typeof NodeGpu.prepareWebgpuBackend = async () => {
  const gpu = (globalThis.navigator as { gpu?: { requestAdapter(): Promise<unknown> } } | undefined)?.gpu;
  if (!gpu) throw new Error("backend 'webgpu': this browser has no WebGPU (navigator.gpu is missing; a secure context, http://localhost or https, is needed)");
  if (!(await gpu.requestAdapter())) throw new Error("backend 'webgpu': the browser offers WebGPU but no adapter (GPU blocklisted or disabled)");
  try {
    // @ts-ignore -- a dependency of the package; not type-checked here (and absent before `npm ci` on older checkouts)
    await import('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    throw new Error(`backend 'webgpu': @tensorflow/tfjs-backend-webgpu could not be loaded (${(e as Error).message}); `
      + 'it is a dependency of this package: npm ci, then npm run build');
  }
};
