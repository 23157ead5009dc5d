/**
 * Row copies inside the wasm heap (src/runtime/heap-ops.ts): `sliceRows`, and tf.gather along axis 0,
 * which runs as one heap copy per index under the wasm backend's GatherV2. Values are compared with
 * rows picked in JS from the same data (a gather is a copy: equal bit for bit); cases the row copy
 * does not cover still go to the original kernel; bad indices are refused with its message.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/backend.js';
import { sliceRows } from '../../src/runtime/heap-ops.js';
import { mulberry32 } from '../../src/rng.js';

beforeAll(async () => {
  await useBackend('wasm', { threads: 2 });
});

function pickRows(data: ArrayLike<number>, rowLen: number, ids: readonly number[]): number[] {
  return ids.flatMap((id) => Array.from({ length: rowLen }, (_, j) => data[id * rowLen + j]!));
}

describe('tf.gather on the wasm heap', () => {
  it('float32 and int32 tables, rows of any shape, indices of any rank, repeats', () => {
    const r = mulberry32(5);
    const table = Float32Array.from({ length: 37 * 12 }, () => r() * 2 - 1);
    const ids = [0, 36, 5, 5, 17, 0, 36, 2];
    const x = tf.tensor2d(table, [37, 12]);
    expect(Array.from(tf.gather(x, ids).dataSync())).toEqual(pickRows(table, 12, ids));
    const x3 = tf.tensor3d(table, [37, 3, 4]); // rows of [3, 4]
    const g3 = tf.gather(x3, tf.tensor2d(ids, [2, 4], 'int32'));
    expect(g3.shape).toEqual([2, 4, 3, 4]);
    expect(Array.from(g3.dataSync())).toEqual(pickRows(table, 12, ids));
    const ints = Int32Array.from({ length: 20 * 3 }, (_, i) => i * 7 - 50);
    expect(Array.from(tf.gather(tf.tensor2d(ints, [20, 3], 'int32'), [19, 0, 4]).dataSync())).toEqual(pickRows(ints, 3, [19, 0, 4]));
    expect(tf.gather(x, tf.tensor1d([], 'int32')).shape).toEqual([0, 12]);
    tf.dispose([x, x3, g3]);
  });

  it('other axes still go through the original kernel', () => {
    const x = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    expect(Array.from(tf.gather(x, [2, 0], 1).dataSync())).toEqual([3, 1, 6, 4]);
    x.dispose();
  });

  it('refuses an index out of range, naming it', () => {
    const x = tf.zeros([5, 4]);
    expect(() => tf.gather(x, [1, 7])).toThrow(/GatherV2: the index value 7 is not in \[0, 4\]/);
    expect(() => tf.gather(x, [-1])).toThrow(/GatherV2: the index value -1 is not in \[0, 4\]/);
    x.dispose();
  });

  it('leaves no tensors behind', () => {
    const x = tf.randomUniform([100, 16]);
    const ids = tf.tensor1d([3, 99, 0], 'int32');
    tf.gather(x, ids).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) tf.gather(x, ids).dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, ids]);
  });
});

describe('sliceRows', () => {
  it('equals tf.slice for every range, and refuses one out of bounds', () => {
    const x = tf.tensor3d(Float32Array.from({ length: 9 * 2 * 3 }, (_, i) => i * 0.5), [9, 2, 3]);
    for (const [from, n] of [[0, 9], [0, 1], [3, 4], [8, 1], [4, 0]] as const) {
      const got = sliceRows(x, from, n);
      expect(got.shape).toEqual([n, 2, 3]);
      expect(Array.from(got.dataSync())).toEqual(Array.from(tf.slice(x, [from, 0, 0], [n, 2, 3]).dataSync()));
      got.dispose();
    }
    expect(() => sliceRows(x, 7, 3)).toThrow(/rows \[7, 10\) of a tensor with 9 rows/);
    x.dispose();
  });
});
