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
import { open, type FileHandle } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** Where each tensor of one safetensors file lies. The snapshot loader has validated the file already. */
interface Span { dtype: string; shape: number[]; begin: number; end: number }

async function readSpans(fh: FileHandle): Promise<Map<string, Span>> {
  const len = Buffer.alloc(8);
  await fh.read(len, 0, 8, 0);
  const n = Number(len.readBigUInt64LE(0));
  const header = Buffer.alloc(n);
  await fh.read(header, 0, n, 8);
  const json = JSON.parse(header.toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const spans = new Map<string, Span>();
  for (const [name, e] of Object.entries(json)) {
    if (name === '__metadata__') continue;
    spans.set(name, { dtype: e.dtype, shape: e.shape, begin: 8 + n + e.data_offsets[0], end: 8 + n + e.data_offsets[1] });
  }
  return spans;
}

/** The parts of the Emscripten module we use (the package's typings leave them out). */
export interface WasmHeap {
  HEAPU8: Uint8Array;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  /** The memory: exported by the threaded build; the others keep it in `asm.memory`. */
  wasmMemory?: WebAssembly.Memory;
  asm?: { memory?: WebAssembly.Memory };
}

export type WasmBackend = BackendWasm & { wasm: WasmHeap };

/** The wasm backend, when it is the active one. */
export function activeWasmBackend(): WasmBackend | null {
  if (tf.getBackend() !== 'wasm') return null;
  const b = tf.backend() as Partial<WasmBackend>;
  return b.wasm?.HEAPU8 && typeof b.makeOutput === 'function' && typeof b.getMemoryOffset === 'function' ? (b as WasmBackend) : null;
}

/**
 * The whole heap as bytes, current even after the memory grew. (`HEAPU8` is refreshed lazily by the
 * Emscripten glue, and in the threaded build another thread's malloc may have grown the memory.)
 */
export function heapU8(backend: WasmBackend): Uint8Array {
  const mem = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
  return mem ? new Uint8Array(mem.buffer) : backend.wasm.HEAPU8;
}

/** One read: `bytes` bytes at file position `pos` into the heap at `offset`. */
interface Job { fh: FileHandle; offset: number; pos: number; bytes: number; what: string }

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
      pieces.push({ ...j, offset: j.offset + done, pos: j.pos + done, bytes: Math.min(PIECE, j.bytes - done) });
    }
  }
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < pieces.length) {
      const j = pieces[next++]!;
      try {
        let done = 0;
        while (done < j.bytes) {
          const view = new Uint8Array(heapU8(backend).buffer, j.offset + done, j.bytes - done);
          const { bytesRead } = await j.fh.read(view, 0, j.bytes - done, j.pos + done);
          if (bytesRead === 0) throw new Error(`${j.what}: unexpected end of file`);
          done += bytesRead;
        }
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
  const files = new Map<string, Promise<{ fh: FileHandle; spans: Map<string, Span> } | null>>();
  const jobs: Job[] = [];
  const get = (file: string) => {
    let f = files.get(file);
    if (!f) {
      f = file.endsWith('.safetensors')
        ? open(file, 'r').then(async (fh) => ({ fh, spans: await readSpans(fh).catch(async (e: unknown) => { await fh.close(); throw e; }) }))
        : Promise.resolve(null);
      files.set(file, f);
    }
    return f;
  };
  return {
    async alloc(file, key, from = 0, count = Infinity) {
      const backend = activeWasmBackend();
      if (!backend) return null;
      const f = await get(file);
      const span = f?.spans.get(key);
      if (!f || !span || span.dtype !== 'F32' || span.shape.length === 0) return null;
      const [first, ...inner] = span.shape as [number, ...number[]];
      const rows = Math.min(count, first - from);
      if (from < 0 || rows <= 0) return null;
      const rowBytes = 4 * inner.reduce((a, b) => a * b, 1);
      const info = backend.makeOutput([rows, ...inner], 'float32');
      jobs.push({
        fh: f.fh, offset: backend.getMemoryOffset(info.dataId), pos: span.begin + from * rowBytes, bytes: rows * rowBytes,
        what: `${file}: tensor '${key}'`,
      });
      return tf.engine().makeTensorFromTensorInfo(info, backend);
    },
    async finish(parallel = 4) {
      const backend = activeWasmBackend();
      const todo = jobs.splice(0);
      if (todo.length > 0 && backend) await runJobs(todo, backend, parallel);
    },
    async close() {
      const all = await Promise.allSettled(files.values());
      files.clear();
      for (const r of all) if (r.status === 'fulfilled' && r.value) await r.value.fh.close();
    },
  };
}
