/**
 * Loading straight into the wasm heap gives the same parameters as the ordinary path (host array,
 * then tf.tensor), and equal to the checkpoint.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/backend.js';
import { buildParams, disposeParams, type M3Params } from '../../src/model/params.js';
import { weightSource } from '../../src/runtime/heap-load.js';
import { expectedShapes } from '../../src/model/params.js';
import { openSnapshot, type SnapshotWeights } from '../../src/weights/snapshot.js';
import { checkpointDir } from '../helpers/fixtures.js';

/** Every tensor of a parameter tree, by path (q/k/v through their whole-tensor views). */
function flatten(p: M3Params): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  const walk = (o: unknown, path: string): void => {
    if (o instanceof tf.Tensor) out.set(`${path}.weight`, o); // the embedding tables
    else if (Array.isArray(o)) o.forEach((v, i) => walk(v, `${path}.${i}`));
    else if (o && typeof o === 'object') {
      if ('weight' in o && 'bias' in o) {
        out.set(`${path}.weight`, (o as { weight: tf.Tensor }).weight);
        out.set(`${path}.bias`, (o as { bias: tf.Tensor }).bias);
        return;
      }
      for (const [k, v] of Object.entries(o)) walk(v, path ? `${path}.${k}` : k);
    }
  };
  walk(p, '');
  return out;
}

describe('tiny-m3: parameters read straight into the heap', () => {
  let snap: SnapshotWeights;
  let direct: M3Params;
  let host: M3Params;
  beforeAll(async () => {
    await useBackend('wasm');
    snap = await openSnapshot(checkpointDir('tiny-m3'), expectedShapes);
    const source = weightSource(snap);
    direct = await buildParams(snap.config, snap.colbertDim, source);
    await source.close();
    host = await buildParams(snap.config, snap.colbertDim, weightSource({ take: (n) => snap.take(n) }));
  });
  afterAll(async () => {
    disposeParams(direct);
    disposeParams(host);
    await snap.close();
  });

  it('equal the ordinary load, tensor by tensor, and match the checkpoint', async () => {
    const a = flatten(direct);
    const b = flatten(host);
    expect([...a.keys()]).toEqual([...b.keys()]);
    expect(a.size).toBe(5 + 16 * snap.config.num_hidden_layers + 4);
    for (const [k, t] of a) {
      expect(t.shape, k).toEqual(b.get(k)!.shape);
      expect(Array.from(t.dataSync()), k).toEqual(Array.from(b.get(k)!.dataSync()));
      const ref = await snap.take(k);
      expect(Array.from(t.dataSync()), k).toEqual(Array.from(ref.data));
    }
  });
});
