/**
 * Loading float32 safetensors straight into backend memory.
 *
 * On the wasm backend a tensor's values live in the module's heap at `memoryOffset`. For an F32
 * tensor in a safetensors file we allocate the tensor first (no values) and let `fs.read` write the
 * file bytes into the heap at that offset: no JS-side copy, no transient host buffer, so loading
 * costs about one read of the file and the process holds the weights once. Everything else
 * (other backends, PyTorch files, F16/BF16 tensors) takes the ordinary path: read to a host
 * Float32Array, then `tf.tensor`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { openSafetensors, type SafetensorsFile } from '../weights/safetensors.js';
import type { HostTensor } from '../weights/types.js';

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

/** One read: `bytes` bytes of tensor `key`, from byte `from` of its data, into the heap at `offset`. */
interface Job { file: SafetensorsFile; key: string; from: number; offset: number; bytes: number }

const PIECE = 64 << 20; // reads are split into pieces this size so that big tensors load in parallel too

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
        await j.file.readInto(j.key, j.from, j.bytes, () => new Uint8Array(heapU8(backend).buffer, j.offset, j.bytes));
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, parallel) }, worker));
  if (failed !== undefined) throw failed;
}

/**
 * Allocates tensors in backend memory and fills them straight from safetensors files. All
 * allocations come first (`alloc`), then all reads (`finish`), so the heap does not grow while reads
 * are writing into it.
 */
export interface DirectReader {
  /**
   * Rows [from, from + count) (default: all) of tensor `key` of `file` as a new float32 tf.Tensor,
   * allocated now and filled by `finish()`; null when that is not possible (not safetensors, not
   * F32, not the wasm backend), so the caller takes the ordinary path.
   */
  alloc(file: string, key: string, from?: number, count?: number): Promise<tf.Tensor | null>;
  /** Reads every allocated tensor's bytes, `parallel` reads at a time. */
  finish(parallel?: number): Promise<void>;
  close(): Promise<void>;
}

export function openDirectReader(): DirectReader {
  // Each file through the project's validated reader (header checked, spans tiling the data).
  const files = new Map<string, Promise<SafetensorsFile | null>>();
  const jobs: Job[] = [];
  const get = (file: string) => {
    let f = files.get(file);
    if (!f) {
      f = file.endsWith('.safetensors') ? openSafetensors(file) : Promise.resolve(null);
      files.set(file, f);
    }
    return f;
  };
  return {
    async alloc(file, key, from = 0, count = Infinity) {
      const backend = activeWasmBackend();
      if (!backend) return null;
      const f = await get(file);
      const info = f?.has(key) ? f.info(key) : undefined;
      if (!f || !info || info.dtype !== 'F32' || info.shape.length === 0) return null;
      const [first, ...inner] = info.shape as [number, ...number[]];
      const rows = Math.min(count, first - from);
      if (from < 0 || rows <= 0) return null;
      const rowBytes = 4 * inner.reduce((a, b) => a * b, 1);
      const out = backend.makeOutput([rows, ...inner], 'float32');
      jobs.push({ file: f, key, from: from * rowBytes, offset: heapAddress(backend, out), bytes: rows * rowBytes });
      return tf.engine().makeTensorFromTensorInfo(out, backend);
    },
    async finish(parallel = 4) {
      const backend = activeWasmBackend();
      const todo = jobs.splice(0);
      if (todo.length > 0 && backend) await runJobs(todo, backend, parallel);
    },
    async close() {
      const all = await Promise.allSettled(files.values());
      files.clear();
      for (const r of all) if (r.status === 'fulfilled' && r.value) await r.value.close();
    },
  };
}

/** What `weightSource` reads: tensors by full name, and (optionally) the file and key each lives at. */
export interface LocatedTensors {
  take(name: string): Promise<HostTensor>;
  locate?(name: string): { file: string; key: string };
}

/**
 * The weight tree's source (model/params.ts `WeightSource`) over a snapshot: F32 safetensors go
 * straight into the wasm heap (every tensor allocated first, then `finish` reads their bytes, several
 * at a time); every other tensor (PyTorch files, F16/BF16, other backends) through a host Float32Array.
 */
export function weightSource(from: LocatedTensors): { tensor(name: string): Promise<tf.Tensor>; finish(): Promise<void>; close(): Promise<void> } {
  const direct = from.locate ? openDirectReader() : undefined;
  return {
    async tensor(name) {
      const at = from.locate?.(name);
      const x = at && direct ? await direct.alloc(at.file, at.key) : null;
      if (x) return x;
      const h = await from.take(name);
      return tf.tensor(h.data, [...h.shape], 'float32');
    },
    finish: async () => { await direct?.finish(); },
    close: async () => { await direct?.close(); },
  };
}
