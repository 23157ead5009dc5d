/** A hook that disposes the activation it is given gets an error naming the hook point, and nothing leaks. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { BgeM3 } from '../../src/m3.js';
import type { ActivationName } from '../../src/hooks/names.js';
import { checkpointDir } from '../helpers/fixtures.js';

describe('hooks that dispose their input', () => {
  let m3: BgeM3;
  beforeAll(async () => {
    m3 = await BgeM3.load(checkpointDir('tiny-m3'));
  });
  afterAll(() => m3.dispose());

  // One point per part of the forward: embeddings, inside a layer, a layer's output, each head.
  const points: ActivationName[] = [
    'embeddings.hook_out', 'encoder.layer.0.attention.self.hook_probs', 'encoder.layer.1.hook_out',
    'dense_head.hook_out', 'sparse_head.hook_out', 'colbert_head.hook_out',
  ];

  it.each(points)('%s: a clear error naming the point, no tensor left behind', async (name) => {
    await m3.runWithHooks(['warm up'], {}); // the first run allocates lasting backend state
    const before = tf.memory().numTensors;
    const run = m3.runWithHooks(['What is BGE M3?'], { [name]: (x: tf.Tensor) => x.dispose() });
    await expect(run).rejects.toThrow(new RegExp(`hook on '${name.replace(/\./g, '\\.')}' disposed the activation it was given`));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a hook returning a disposed tensor is named too, and a hook after a replacing hook sees the replacement', async () => {
    await expect(m3.runWithHooks(['x'], {
      'embeddings.hook_out': (x: tf.Tensor) => {
        const y = tf.mul(x, 2);
        y.dispose();
        return y;
      },
    })).rejects.toThrow(/hook on 'embeddings\.hook_out' returned a disposed tensor/);
    // Reading (not disposing) stays allowed, and a well-behaved chain still runs.
    const out = await m3.runWithHooks(['x'], { 'embeddings.hook_out': [(x: tf.Tensor) => tf.mul(x, 1), (x: tf.Tensor) => void x.shape] });
    expect(out.denseVecs![0]!.length).toBe(m3.config.hidden_size);
  });
});
