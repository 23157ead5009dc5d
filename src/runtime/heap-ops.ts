/**
 * Slices and row gathers without the round trip through JS.
 *
 * tfjs-backend-wasm's `slice` (and `split`, `unstack`, `stridedSlice` on contiguous ranges, which
 * use it) first copies the WHOLE input tensor out of the heap into a new JS array, then copies the
 * slice back in: cutting a [8192, 1024] activation into 32 chunks moves 32 × 32 MB. Its `gather`
 * runs in C++ but costs ~100 ns per element (29 ms for the 512 embedding rows of a 1×512 batch). A
 * block of consecutive rows is one contiguous range of the input's memory, so here it is one
 * `copyWithin` inside the heap into a tensor allocated by the backend itself; a gather along axis 0
 * is one such copy per index, and any slice is one copy per contiguous run. `installHeapCopyKernels`
 * puts both under the wasm backend's `GatherV2` and `Slice`, so `tf.gather` and `tf.slice` get them
 * (512 embedding rows: 23 ms -> 0.7 ms; the [CLS] row of a 1×512 batch: 6 ms -> ~0). Other
 * backends keep their own.
 */
import * as tf from '@tensorflow/tfjs-core';
import { activeWasmBackend, heapAddress, heapU8, type WasmBackend } from './heap-load.js';

/** Rows [from, from + n) of `t` along its first axis, as a new tensor (a copy; the whole tensor is cloned). */
export function sliceRows<T extends tf.Tensor>(t: T, from: number, n: number): T {
  const [rows, ...inner] = t.shape;
  if (from < 0 || n < 0 || from + n > rows!) throw new RangeError(`sliceRows: rows [${from}, ${from + n}) of a tensor with ${rows} rows`);
  if (from === 0 && n === rows) return tf.clone(t);
  const begin = [from, ...inner.map(() => 0)];
  const size = [n, ...inner];
  // the heap copy directly, also where the Slice kernel was not replaced (a backend set up elsewhere)
  const b = activeWasmBackend();
  const info = b && sliceKernel({ inputs: { x: t }, backend: b, attrs: { begin, size } });
  return (info ? tf.engine().makeTensorFromTensorInfo(info, b!) : tf.slice(t, begin, size)) as T;
}

/** True when `x` is a float32 or int32 tensor in the heap of wasm backend `b`: what the copies below handle. */
function onHeap(x: tf.TensorInfo, b: WasmBackend): boolean {
  return (x.dtype === 'float32' || x.dtype === 'int32') && !!b.dataIdMap?.has(x.dataId) && typeof b.makeOutput === 'function';
}

/**
 * tf.gather(x, indices) along axis 0 (batchDims 0) of a float32 or int32 tensor on the wasm heap:
 * output row i is a copy of row indices[i]. Null for any other case (the original kernel runs it).
 * Out-of-range indices are refused with the original kernel's message.
 */
function gatherRowsKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo | null {
  const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
  const { axis, batchDims } = (args.attrs ?? {}) as { axis?: number; batchDims?: number };
  const b = args.backend as WasmBackend;
  if ((batchDims ?? 0) !== 0 || x.shape.length < 1 || indices.dtype !== 'int32' || !onHeap(x, b)) return null;
  if (tf.util.parseAxisParam(axis ?? 0, x.shape)[0] !== 0) return null;
  const [rows, ...inner] = x.shape as [number, ...number[]];
  const ids = b.readSync(indices.dataId) as Int32Array;
  for (const id of ids) {
    if (!(id >= 0 && id <= rows - 1)) throw new Error(`GatherV2: the index value ${id} is not in [0, ${rows - 1}]`);
  }
  const out = b.makeOutput([...indices.shape, ...inner], x.dtype);
  const rowBytes = 4 * inner.reduce((a, v) => a * v, 1);
  if (rowBytes === 0 || ids.length === 0) return out;
  const heap = heapU8(b);
  const src = heapAddress(b, x);
  const dst = heapAddress(b, out);
  for (let i = 0; i < ids.length; i++) heap.copyWithin(dst + i * rowBytes, src + ids[i]! * rowBytes, src + (ids[i]! + 1) * rowBytes);
  return out;
}

/**
 * tf.slice of a float32 or int32 tensor on the wasm heap, as heap copies of its contiguous runs.
 * (The backend's own Slice reads the whole input out of the heap first: 6 ms to take the [CLS] row
 * of a [1, 512, 1024] hidden state.) Null for other dtypes or tensors (the original kernel runs them).
 */
function sliceKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo | null {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { begin, size } = (args.attrs ?? {}) as { begin: number | number[]; size: number | number[] };
  const b = args.backend as WasmBackend;
  if (!onHeap(x, b)) return null;
  const [from, n] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size) as [number[], number[]];
  const out = b.makeOutput(n, x.dtype);
  if (n.some((v) => v === 0)) return out;
  const shape = x.shape;
  const stride = [...tf.util.computeStrides(shape), 1]; // elements per step of each dimension
  // Each copy is a run over the last dimensions: the trailing ones taken whole, and the first one
  // (from the end) that is not; the dimensions before it are iterated.
  let d = shape.length - 1;
  let run = 1;
  while (d >= 0 && from[d] === 0 && n[d] === shape[d]) run *= shape[d--]!;
  const outer = Math.max(d, 0);
  let base = heapAddress(b, x);
  if (d >= 0) {
    run *= n[d]!;
    base += 4 * from[d]! * stride[d]!;
  }
  const heap = heapU8(b);
  let dst = heapAddress(b, out);
  const idx = new Array<number>(outer).fill(0);
  for (;;) {
    let src = base;
    for (let i = 0; i < outer; i++) src += 4 * (from[i]! + idx[i]!) * stride[i]!;
    heap.copyWithin(dst, src, src + 4 * run);
    dst += 4 * run;
    let i = outer - 1;
    while (i >= 0 && ++idx[i]! === n[i]) idx[i--] = 0;
    if (i < 0) break;
  }
  return out;
}

type HeapKernel = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => tf.TensorInfo | null;

/** Registers `fast` under the wasm backend's kernel `name`, falling back to the original where it returns null. */
function overrideWasmKernel(name: string, fast: HeapKernel): void {
  const original = tf.getKernel(name, 'wasm');
  if (!original) return;
  tf.unregisterKernel(name, 'wasm');
  const kernelFunc = (args: Parameters<HeapKernel>[0]) => fast(args) ?? original.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
  tf.registerKernel({ ...original, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
}

let installed = false;

/**
 * Puts the heap-copy gather and slice under the wasm backend's `GatherV2` and `Slice` kernels (the
 * original ones still run every case these do not cover). Idempotent; call after
 * tfjs-backend-wasm registered its kernels.
 */
export function installHeapCopyKernels(): void {
  if (installed || !tf.getKernel('GatherV2', 'wasm')) return;
  installed = true;
  overrideWasmKernel('GatherV2', gatherRowsKernel);
  overrideWasmKernel('Slice', sliceKernel);
}
