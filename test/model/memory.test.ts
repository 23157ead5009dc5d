/**
 * Memory stays flat: 100 encode calls of assorted batches leave tf.memory() where it was after a
 * warm-up (no tensor leaks), and the wasm heap does not grow either (no leaked XNNPACK operators or
 * packed operands, which tf.memory() cannot see).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { BgeM3 } from '../../src/m3.js';
import { heapStats } from '../../src/runtime/heap-guard.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { loadCases } from '../helpers/reference.js';

const cases = loadCases().filter((c) => c.input_ids.length <= 64);

describe('tiny-m3: memory across repeated encode calls', () => {
  let m3: BgeM3;
  beforeAll(async () => { m3 = await BgeM3.load(checkpointDir('tiny-m3')); });
  afterAll(() => m3.dispose());

  it('tf.memory() and the wasm heap are flat across 100 encodes', async () => {
    const all = { returnDense: true, returnSparse: true, returnColbert: true };
    const batches = [0, 1, 2, 3].map((k) => ({ inputIds: cases.slice(k * 3, k * 3 + 1 + k).map((c) => c.input_ids) }));
    const encode = (r: number) => m3.encode(batches[r % batches.length]!, { ...all, ...(r % 5 === 0 ? { fast: { blockSize: 3, chunkTokens: 5 } } : r % 7 === 0 ? { forward: 'reference' as const } : {}) });
    for (let r = 0; r < 5; r++) await encode(r); // warm-up: kernels and the heap settle
    const before = tf.memory();
    const heapBefore = heapStats()?.heapBytes;
    for (let r = 0; r < 100; r++) await encode(r);
    const after = tf.memory();
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numBytes).toBe(before.numBytes);
    expect(after.numDataBuffers).toBe(before.numDataBuffers);
    if (heapBefore !== undefined) expect(heapStats()!.heapBytes).toBe(heapBefore);
  });
});
