/**
 * Row slices without the round trip through JS.
 *
 * tfjs-backend-wasm's `slice` (and `split`, `unstack`, `stridedSlice` on contiguous ranges, which
 * use it) first copies the WHOLE input tensor out of the heap into a new JS array, then copies the
 * slice back in: cutting a [8192, 1024] activation into 32 chunks moves 32 × 32 MB. Its `gather`
 * runs in C++ but costs ~100 ns per element. A block of consecutive rows is one contiguous range of
 * the input's memory, so here it is one `copyWithin` inside the heap into a tensor allocated by the
 * backend itself. Other backends use tf.slice.
 */
import * as tf from '@tensorflow/tfjs-core';
import { activeWasmBackend, heapU8 } from './heap-load.js';

/** Rows [from, from + n) of `t` along its first axis, as a new tensor (a copy; the whole tensor is cloned). */
export function sliceRows<T extends tf.Tensor>(t: T, from: number, n: number): T {
  const [rows, ...inner] = t.shape;
  if (from < 0 || n < 0 || from + n > rows!) throw new RangeError(`sliceRows: rows [${from}, ${from + n}) of a tensor with ${rows} rows`);
  if (from === 0 && n === rows) return tf.clone(t);
  const b = activeWasmBackend();
  if (!b || !b.dataIdMap.has(t.dataId) || (t.dtype !== 'float32' && t.dtype !== 'int32')) {
    return tf.slice(t, [from, ...inner.map(() => 0)], [n, ...inner]) as T;
  }
  const rowBytes = 4 * inner.reduce((a, x) => a * x, 1);
  const info = b.makeOutput([n, ...inner], t.dtype);
  const src = b.getMemoryOffset(t.dataId) + from * rowBytes;
  heapU8(b).copyWithin(b.getMemoryOffset(info.dataId), src, src + n * rowBytes);
  return tf.engine().makeTensorFromTensorInfo(info, b) as T;
}
