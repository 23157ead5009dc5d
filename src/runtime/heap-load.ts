/**
 * Loading float32 weights straight into backend memory.
 *
 * On the wasm backend a tensor's values live in the module's heap at `memoryOffset`. For an F32
 * tensor stored as one contiguous little-endian run (any safetensors tensor; a contiguous view of a
 * torch.save storage) we allocate the tensor first (no values) and let the weight file's byte source
 * write the bytes into the heap at that offset: `fs.read` for a file, the body stream of an HTTP Range
 * response for a URL, 64 MB slices for a Blob or picked File. No whole-tensor host buffer, so a load
 * holds the weights about once (the real checkpoint's word embeddings are 1 GB). Everything else
 * (other backends, F16/BF16/F64, strided or big-endian torch views) takes the host path, one tensor at
 * a time: read to a host Float32Array, then `tf.tensor`. `WeightLoadStats` says which went which way.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { numel, type HostTensor, type TensorSource } from '../weights/types.js';

/** The parts of the Emscripten module we use (the package's typings leave them out). */
export interface WasmHeap {
  HEAPU8: Uint8Array;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  /** The memory: exported by the threaded build; the others keep it in `asm.memory`. */
  wasmMemory?: WebAssembly.Memory;
  asm?: { memory?: WebAssembly.Memory };
  /** The threaded build's pool size. */
  tfjs?: { getThreadsCount?: () => number };
}

export type WasmBackend = BackendWasm & { wasm: WasmHeap };

/** The wasm backend, when it is the active one. */
export function activeWasmBackend(): WasmBackend | null {
  if (tf.getBackend() !== 'wasm') return null;
  const b = tf.backend() as Partial<WasmBackend>;
  return b.wasm?.HEAPU8 && typeof b.makeOutput === 'function' && typeof b.getMemoryOffset === 'function' ? (b as WasmBackend) : null;
}

/**
 * True once the wasm backend has been created. (Not `tf.findBackend('wasm')`: for a backend that is
 * registered but not yet created, that call starts creating it, before the caller could set its
 * thread count or .wasm paths.)
 */
export function wasmBackendCreated(): boolean {
  return 'wasm' in tf.engine().registry;
}

/**
 * The whole heap as bytes, current even after the memory grew. (`HEAPU8` is refreshed lazily by the
 * Emscripten glue, and in the threaded build another thread's malloc may have grown the memory.)
 */
export function heapU8(backend: WasmBackend): Uint8Array {
  const mem = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
  return mem ? new Uint8Array(mem.buffer) : backend.wasm.HEAPU8;
}

/** A tensor's address in the heap, as an unsigned number (the backend may hand out negative ones past 2 GiB). */
export function heapAddress(backend: WasmBackend, t: tf.TensorInfo): number {
  return backend.getMemoryOffset(t.dataId) >>> 0;
}

/** A tensor in an open weight file: the file and its key there. */
export interface TensorAt { source: TensorSource; key: string }

/** One read: `bytes` bytes of tensor `key`, from byte `from` of its data, into the heap at `offset`. */
interface Job { source: TensorSource; key: string; from: number; offset: number; bytes: number }

const PIECE = 64 << 20; // reads are split into pieces this size so that big tensors load in parallel too (URLs: one Range request each)

/**
 * Runs the jobs `parallel` at a time. The heap view is taken per read (heap growth replaces the
 * heap's buffer object; nothing allocates while the reads run, but a stale view would be wrong).
 * On a failure the reads already started are awaited before rethrowing, so that no read can still
 * be writing into tensors the caller then frees.
 */
async function runJobs(jobs: Job[], backend: WasmBackend, parallel: number): Promise<void> {
  const pieces: Job[] = [];
  for (const j of jobs) {
    for (let done = 0; done < j.bytes; done += PIECE) {
      pieces.push({ ...j, offset: j.offset + done, from: j.from + done, bytes: Math.min(PIECE, j.bytes - done) });
    }
  }
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < pieces.length) {
      const j = pieces[next++]!;
      try {
        await j.source.readInto(j.key, j.from, j.bytes, () => new Uint8Array(heapU8(backend).buffer, j.offset, j.bytes));
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, parallel) }, worker));
  if (failed !== undefined) throw failed;
}

/** Why tensor `key` of `source` cannot be read straight into backend memory, or null when it can. */
export function whyNotDirect(source: TensorSource, key: string): string | null {
  if (!activeWasmBackend()) return `the ${tf.getBackend()} backend (only the wasm heap is filled in place)`;
  const { dtype, shape } = source.info(key);
  if (dtype !== 'F32') return `${dtype}, converted to float32 on the host`;
  if (shape.length === 0) return 'a scalar';
  return source.whyNotInPlace(key);
}

/**
 * Allocates tensors in backend memory and fills them straight from open weight files. All
 * allocations come first (`alloc`), then all reads (`finish`), so the heap does not grow while reads
 * are writing into it.
 */
export interface DirectReader {
  /**
   * Rows [from, from + count) (default: all) of tensor `key` of `source` as a new float32 tf.Tensor,
   * allocated now and filled by `finish()`; null when `whyNotDirect` refuses it (or the rows are
   * out of range), so the caller takes the host path.
   */
  alloc(source: TensorSource, key: string, from?: number, count?: number): tf.Tensor | null;
  /** Reads every allocated tensor's bytes, `parallel` reads at a time. */
  finish(parallel?: number): Promise<void>;
}

export function openDirectReader(): DirectReader {
  const jobs: Job[] = [];
  return {
    alloc(source, key, from = 0, count = Infinity) {
      const backend = activeWasmBackend();
      if (!backend || whyNotDirect(source, key) !== null) return null;
      const [first, ...inner] = source.info(key).shape as [number, ...number[]];
      const rows = Math.min(count, first - from);
      if (from < 0 || rows <= 0) return null;
      const rowBytes = 4 * numel(inner);
      const out = backend.makeOutput([rows, ...inner], 'float32');
      jobs.push({ source, key, from: from * rowBytes, offset: heapAddress(backend, out), bytes: rows * rowBytes });
      return tf.engine().makeTensorFromTensorInfo(out, backend);
    },
    async finish(parallel = 4) {
      const backend = activeWasmBackend();
      const todo = jobs.splice(0);
      if (todo.length > 0 && backend) await runJobs(todo, backend, parallel);
    },
  };
}

/** What `weightSource` reads: tensors by full name, and (optionally) the open file each lives in. */
export interface LocatedTensors {
  take(name: string): Promise<HostTensor>;
  source?(name: string): TensorAt | undefined;
}

/**
 * How a load's weights reached backend memory: a test fails when a format silently falls back to the
 * host path, and a page can show it. Bytes are float32 bytes of the tensors made.
 */
export interface WeightLoadStats {
  /** Tensors (and their bytes) read straight from the files into backend memory. */
  readonly direct: { tensors: number; bytes: number };
  /** Tensors (and their bytes) made from a host Float32Array, one at a time. */
  readonly host: { tensors: number; bytes: number };
  /** Each tensor that took the host path, with the reason (`'F16, converted to float32 on the host'` …). */
  readonly hostTensors: ReadonlyArray<{ name: string; reason: string }>;
}

/**
 * The weight tree's source (model/params.ts `WeightSource`) over a snapshot: tensors `whyNotDirect`
 * accepts go straight into the wasm heap (every tensor allocated first, then `finish` reads their
 * bytes, several at a time); every other one through a host Float32Array. `stats()` tells which.
 */
export function weightSource(from: LocatedTensors): { tensor(name: string): Promise<tf.Tensor>; finish(): Promise<void>; stats(): WeightLoadStats } {
  const direct = openDirectReader();
  const stats = { direct: { tensors: 0, bytes: 0 }, host: { tensors: 0, bytes: 0 }, hostTensors: [] as { name: string; reason: string }[] };
  return {
    async tensor(name) {
      const at = from.source?.(name);
      const x = at ? direct.alloc(at.source, at.key) : null;
      if (x) {
        stats.direct.tensors++;
        stats.direct.bytes += 4 * x.size;
        return x;
      }
      const h = await from.take(name);
      stats.host.tensors++;
      stats.host.bytes += 4 * h.data.length;
      stats.hostTensors.push({ name, reason: at ? whyNotDirect(at.source, at.key) ?? 'an empty tensor' : 'no open weight file to read it from' });
      return tf.tensor(h.data, [...h.shape], 'float32');
    },
    finish: () => direct.finish(),
    stats: () => structuredClone(stats),
  };
}
