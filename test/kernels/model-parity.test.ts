/**
 * The whole model against the float64 reference on both matMul paths: the FMA kernel (src/kernels,
 * the default where it runs) and the XNNPACK fallback (kernel switched off), with the tolerances of
 * test/model/parity.test.ts. Per checkpoint: every stored activation of the short cases (hooked
 * layers), and encode() outputs of every case (the unhooked fast path, long_3k included). Also:
 * memory stays flat across repeated encodes on both paths. Max errors are printed per path.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import type { ActivationName } from '../../src/hooks/names.js';
import { kernelStatus, setKernelEnabled } from '../../src/kernels/index.js';
import { heapStats } from '../../src/runtime/heap-guard.js';
import { CHECKPOINTS } from '../helpers/fixtures.js';
import { ErrorLog, loadCases, maxAbsDiff, sparseMaxAbsDiff, useModelAndReference } from '../helpers/reference.js';

const TOL = { hidden: 1e-4, probs: 1e-5, heads: 1e-4 }; // as in test/model/parity.test.ts
const cases = loadCases();
const short = cases.filter((c) => c.id !== 'long_3k');
const PATHS = [{ kernel: true, label: 'FMA kernel' }, { kernel: false, label: 'XNNPACK fallback' }] as const;

/** The real (unpadded) rows of batch row b of a cached activation, for the names the fixtures store. */
function realRows(t: tf.Tensor, b: number, L: number, name: string): Float32Array {
  return tf.tidy(() => {
    let x = tf.squeeze(tf.slice(t, [b], [1]), [0]);
    const s = x.shape;
    if (/hook_(scores|probs)$/.test(name)) x = tf.slice(x, [0, 0, 0], [s[0]!, L, L]);
    else if (/hook_[qkv]$/.test(name)) x = tf.slice(x, [0, 0, 0], [s[0]!, L, s[2]!]);
    else if (name === 'dense_head.hook_out') { /* [H] */ }
    else if (name.startsWith('colbert_')) x = tf.slice(x, [0, 0], [L - 1, s[1]!]);
    else if (name === 'sparse_linear.hook_out') x = tf.reshape(tf.slice(x, [0, 0], [L, 1]), [L]);
    else if (name === 'sparse_head.hook_out') x = tf.slice(x, [0], [L]);
    else x = tf.slice(x, [0, 0], [L, s[1]!]);
    return x.dataSync() as Float32Array;
  });
}

afterAll(() => setKernelEnabled(true));

describe.each(CHECKPOINTS)('%s: parity on the kernel and on the fallback', (ckpt) => {
  const fx = useModelAndReference(ckpt);

  for (const path of PATHS) {
    it(`${path.label}: stored activations of the short cases, and encode() of every case`, async () => {
      setKernelEnabled(path.kernel);
      expect(kernelStatus().active, kernelStatus().path).toBe(path.kernel);
      const log = new ErrorLog(`${ckpt}, ${path.label}`);
      for (let i = 0; i < short.length; i += 8) {
        const group = short.slice(i, i + 8);
        const names = new Set<string>();
        for (const c of group) for (const n of fx.ref.names(c.id)) names.add(n);
        const { cache } = await fx.m3.runWithCache({ inputIds: group.map((c) => c.input_ids) }, { names: [...names] as ActivationName[] });
        for (const [b, c] of group.entries()) {
          for (const name of fx.ref.names(c.id)) {
            const want = await fx.ref.tensor(c.id, name);
            const err = log.add(name.replace(/layer\.\d+\./, 'layer.{i}.'), maxAbsDiff(realRows(cache.get(name as ActivationName), b, c.input_ids.length, name), want.data));
            expect(err, `${c.id}/${name}`).toBeLessThanOrEqual(name.endsWith('hook_probs') ? TOL.probs : TOL.hidden);
          }
        }
        cache.dispose();
      }
      const out = await fx.m3.encode({ inputIds: cases.map((c) => c.input_ids) }, {
        returnDense: true, returnSparse: true, returnColbert: true, batchSize: 8,
      });
      for (const [i, c] of cases.entries()) {
        const dense = await fx.ref.tensor(c.id, 'dense_head.hook_out');
        expect(log.add('encode: dense', maxAbsDiff(out.denseVecs![i]!, dense.data)), c.id).toBeLessThanOrEqual(TOL.heads);
        const lw = fx.ref.json.cases[c.id]!.lexical_weights;
        expect(log.add('encode: lexical weights', sparseMaxAbsDiff(out.lexicalWeights![i]!, lw)), c.id).toBeLessThanOrEqual(TOL.heads);
        const colbert = await fx.ref.tensor(c.id, 'colbert_head.hook_out');
        expect(log.add('encode: colbert', maxAbsDiff(out.colbertVecs![i]!.data, colbert.data)), c.id).toBeLessThanOrEqual(TOL.heads);
      }
      log.print();
    });
  }

  if (ckpt === 'tiny-m3') {
    it('tf.memory() and the wasm heap are flat across repeated encodes, on both paths', async () => {
      const ids = { inputIds: short.slice(0, 5).map((c) => c.input_ids) };
      const all = { returnDense: true, returnSparse: true, returnColbert: true };
      for (const path of PATHS) {
        setKernelEnabled(path.kernel);
        for (let r = 0; r < 3; r++) await fx.m3.encode(ids, all); // warm-up: kernels, pack buffer, XNNPACK operators
        const before = tf.memory();
        const heap = heapStats()?.heapBytes;
        for (let r = 0; r < 20; r++) await fx.m3.encode(ids, all);
        expect(tf.memory().numTensors, path.label).toBe(before.numTensors);
        expect(tf.memory().numBytes, path.label).toBe(before.numBytes);
        expect(heapStats()?.heapBytes, path.label).toBe(heap);
      }
    });
  }
});
