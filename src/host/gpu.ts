/** The `webgpu` backend in Node: there is none (the browser build takes gpu.browser.ts). */
export async function prepareWebgpuBackend(): Promise<void> {
  throw new Error("backend 'webgpu' runs in web pages only (@tensorflow/tfjs-backend-webgpu needs the browser's navigator.gpu); "
    + "in Node use 'wasm' (default) or 'tensorflow' (@tensorflow/tfjs-node)");
}
