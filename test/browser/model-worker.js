// A model run inside a module Web Worker (kernel.test.ts): the bundle imported by a worker, where
// Atomics.wait is allowed, so the FMA kernel's calling thread sleeps instead of spinning. Answers one
// message { model, inputIds } with the dense vectors and runtimeInfo(), or { error }.
import * as bge from '/dist/browser/index.js';

self.onmessage = async (e) => {
  const { model, inputIds } = e.data;
  try {
    const m3 = await bge.BgeM3.load(model, { backend: 'wasm' });
    const out = await m3.encode({ inputIds }, { returnDense: true, batchSize: 4 });
    self.postMessage({ dense: out.denseVecs.map((v) => Array.from(v)), runtime: bge.runtimeInfo() });
    m3.dispose();
  } catch (err) {
    self.postMessage({ error: String((err && err.stack) || err) });
  }
};
