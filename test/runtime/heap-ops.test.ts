/**
 * Copies inside the wasm heap (src/runtime/heap-ops.ts): `sliceRows`; tf.gather along axis 0, one
 * heap copy per index under the wasm backend's GatherV2; tf.slice, one copy per contiguous run under
 * its Slice. Values are compared with elements picked in JS from the same data (a copy: equal bit for
 * bit); cases the copies do not cover still go to the original kernels; bad indices are refused with
 * the original message.
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

/** x[from + i] for every index i of an output of shape n, row-major, picked in JS. */
function sliceJs(data: ArrayLike<number>, shape: number[], from: number[], n: number[]): number[] {
  const out: number[] = [];
  const idx = n.map(() => 0);
  if (n.some((v) => v === 0)) return out;
  for (;;) {
    let flat = 0;
    for (let i = 0; i < shape.length; i++) flat = flat * shape[i]! + from[i]! + idx[i]!;
    out.push(data[flat]!);
    let i = n.length - 1;
    while (i >= 0 && ++idx[i]! === n[i]) idx[i--] = 0;
    if (i < 0) return out;
  }
}

describe('tf.slice on the wasm heap', () => {
  it('every kind of range, ranks 1 to 4, float32 and int32, against elements picked in JS', () => {
    const shape = [3, 4, 5, 6];
    const data = Float32Array.from({ length: 360 }, (_, i) => i * 0.25 - 7);
    const x4 = tf.tensor4d(data, shape as [number, number, number, number]);
    const cases: Array<[number[], number[]]> = [
      [[0, 0, 0, 0], [3, 4, 5, 6]], [[1, 0, 0, 0], [1, 4, 5, 6]], [[0, 1, 0, 0], [3, 2, 5, 6]], [[2, 3, 4, 5], [1, 1, 1, 1]],
      [[0, 0, 2, 0], [3, 4, 3, 6]], [[1, 1, 1, 1], [2, 3, 4, 5]], [[0, 0, 0, 3], [3, 4, 5, 3]], [[0, 2, 0, 0], [3, 0, 5, 6]],
    ];
    for (const [from, n] of cases) {
      const got = tf.slice(x4, from, n);
      expect(got.shape, `${from} ${n}`).toEqual(n);
      expect(Array.from(got.dataSync()), `from ${from} size ${n}`).toEqual(sliceJs(data, shape, from, n));
      got.dispose();
    }
    expect(Array.from(tf.slice(x4, [1, 2], [-1, 1]).dataSync())).toEqual(sliceJs(data, shape, [1, 2, 0, 0], [2, 1, 5, 6])); // size −1: to the end
    const ints = tf.tensor3d(Int32Array.from({ length: 60 }, (_, i) => 1000 - i), [3, 4, 5], 'int32');
    expect(Array.from(tf.slice(ints, [0, 1, 2], [3, 2, 2]).dataSync())).toEqual(sliceJs(ints.dataSync(), [3, 4, 5], [0, 1, 2], [3, 2, 2]));
    expect(Array.from(tf.slice(tf.tensor1d([5, 6, 7, 8]), 1, 2).dataSync())).toEqual([6, 7]);
    const cls = tf.slice(tf.tensor3d(data.subarray(0, 120), [1, 20, 6]), [0, 0, 0], [1, 1, 6]); // the [CLS] row
    expect(Array.from(cls.dataSync())).toEqual(Array.from(data.subarray(0, 6)));
    tf.dispose([x4, ints, cls]);
  });

  it('other dtypes still go through the original kernel', () => {
    const b = tf.tensor2d([[1, 0], [0, 1]], [2, 2], 'bool');
    expect(Array.from(tf.slice(b, [1, 0], [1, 2]).dataSync())).toEqual([0, 1]);
    b.dispose();
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
