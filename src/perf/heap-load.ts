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
}

export type WasmBackend = BackendWasm & { wasm: WasmHeap };

/** The wasm backend, when it is the active one. */
export function activeWasmBackend(): WasmBackend | null {
  if (tf.getBackend() !== 'wasm') return null;
  const b = tf.backend() as Partial<WasmBackend>;
  return b.wasm?.HEAPU8 && typeof b.makeOutput === 'function' && typeof b.getMemoryOffset === 'function' ? (b as WasmBackend) : null;
}

const CHUNK = 1 << 30; // fs reads are capped near 2 GB per call

/**
 * Reads `bytes` bytes at file position `pos` into the wasm heap at `offset`. The view is taken again
 * for every chunk: heap growth replaces the heap's buffer (nothing allocates while we await here,
 * but a stale view would be wrong, not just slow).
 */
async function readIntoHeap(fh: FileHandle, backend: WasmBackend, offset: number, pos: number, bytes: number, what: string): Promise<void> {
  let done = 0;
  while (done < bytes) {
    const n = Math.min(bytes - done, CHUNK);
    const view = new Uint8Array(backend.wasm.HEAPU8.buffer, offset + done, n);
    const { bytesRead } = await fh.read(view, 0, n, pos + done);
    if (bytesRead === 0) throw new Error(`${what}: unexpected end of file`);
    done += bytesRead;
  }
}

/** Reads named tensors straight into backend tensors, or says it cannot (null). */
export interface DirectReader {
  /**
   * Tensor `key` of `file` as a float32 tf.Tensor of its stored shape, read straight into the wasm
   * heap; null when that is not possible (not safetensors, not F32, not the wasm backend).
   */
  read(file: string, key: string): Promise<tf.Tensor | null>;
  /** Rows [from, from + count) of tensor `key` (along its first axis), the same way. */
  readRows(file: string, key: string, from: number, count: number): Promise<tf.Tensor | null>;
  close(): Promise<void>;
}

export function openDirectReader(): DirectReader {
  const files = new Map<string, Promise<{ fh: FileHandle; spans: Map<string, Span> } | null>>();
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
    async read(file, key) {
      return this.readRows(file, key, 0, Infinity);
    },
    async readRows(file, key, from, count) {
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
      const t = tf.engine().makeTensorFromTensorInfo(info, backend);
      try {
        await readIntoHeap(f.fh, backend, backend.getMemoryOffset(info.dataId), span.begin + from * rowBytes, rows * rowBytes, `${file}: tensor '${key}'`);
      } catch (e) {
        t.dispose();
        throw e;
      }
      return t;
    },
    async close() {
      const all = await Promise.allSettled(files.values());
      files.clear();
      for (const r of all) if (r.status === 'fulfilled' && r.value) await r.value.fh.close();
    },
  };
}
