/**
 * Reader for `torch.save` checkpoints (the zip format PyTorch has written since 1.6), without Python.
 *
 * Layout: a zip archive with one top folder `<archive>/` (its name varies: `pytorch_model/`,
 * `archive/`, ...) holding `data.pkl` (the pickled state dict), `data/<key>` (the raw storages, stored
 * uncompressed), `version` and, in newer files, `byteorder`. The pickle is read by a restricted
 * unpickler (see pickle.ts) that never executes anything; tensors are views on storages
 * (storage offset, size, stride) and are read lazily with positional reads on one byte source (a
 * file, a Blob, a URL read by HTTP ranges: see source.ts): the file is never read whole.
 */
import { openFileSource } from '../host/file-source.js';
import { ownedToFloat32 } from './dtype.js';
import type { ByteSource } from './source.js';
import {
  DTYPE_SIZE, numel, WeightFileError,
  type HostTensor, type RawTensor, type TensorInfo, type TensorSource,
} from './types.js';
import { crc32, entryDataOffset, readExactly, readZipDirectory, type ZipEntry } from './zip.js';
import { describe, TorchTensorRef, unpickle, type PickleValue } from './pickle.js';

/**
 * A `data.pkl` larger than this is refused before it is inflated (bge-m3's is ~50 kB; torch writes
 * ~130 bytes per tensor, so this still fits some 120,000 tensors). It also bounds the memory a
 * deflated pickle bomb can take: inflating needs about twice the inflated size.
 */
export const MAX_PICKLE_BYTES = 16 * 1024 * 1024;

/** Most bytes one tensor may take (Node's Buffer limit on 64-bit hosts; browsers allow as much). */
const MAX_TENSOR_BYTES = 2 ** 32;

/** Wrapper keys unwrapped when the top-level dict holds no tensors itself (`{'state_dict': {...}}`). */
const WRAPPER_KEYS = ['state_dict', 'model_state_dict', 'model', 'module'];

/** How one tensor lies in its storage (all offsets and strides in elements). */
export interface TorchTensorView {
  /** Archive-relative storage name, e.g. `data/3`. */
  readonly storage: string;
  /** Zip entry holding it, e.g. `pytorch_model/data/3`. */
  readonly entry: string;
  readonly storageOffset: number;
  readonly stride: readonly number[];
  /** Elements in the storage (of this tensor's dtype). */
  readonly storageNumel: number;
  /** True when the tensor is one row-major run of the storage. */
  readonly contiguous: boolean;
}

interface Entry extends TensorInfo {
  readonly view: TorchTensorView;
  readonly zip: ZipEntry;
}

function isContiguous(size: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    const s = size[i]!;
    if (s !== 1 && stride[i] !== expected) return false;
    expected *= s;
  }
  return true;
}

type Dict = Map<PickleValue, PickleValue>;

/**
 * Finds the state dict in the unpickled root and flattens it to (name, tensor) pairs in file order.
 *
 * A state dict is a tree of dicts whose leaves are tensors. Tensors may be shared (tied weights: one
 * tensor under two names) and so may storages (several views on one storage), but a dict is never
 * reached twice: a pickle whose dicts form a cycle (`d = {'state_dict': d}`) or share a sub-dict is
 * refused, which also keeps the walk linear in the pickle's size.
 */
function collectTensors(file: string, where: string, root: PickleValue): Array<[string, TorchTensorRef]> {
  if (root instanceof TorchTensorRef) throw new WeightFileError(file, `${where} holds a single tensor, not a state dict`);
  if (!(root instanceof Map)) throw new WeightFileError(file, `${where} holds a ${describe(root)}, not a state dict`);
  const refuse = (msg: string): never => { throw new WeightFileError(file, `${where}: ${msg}`); };
  const label = (prefix: string): string => (prefix === '' ? 'the top-level dict' : `dict '${prefix.slice(0, -1)}'`);

  // Unwrap `{'state_dict': {...}}` while the dict holds no tensors itself and has exactly one wrapper key.
  let dict: Dict = root;
  let path = '';
  const unwrapped = new Set<Dict>([dict]);
  for (;;) {
    if ([...dict.values()].some((v) => v instanceof TorchTensorRef)) break;
    const wrappers = WRAPPER_KEYS.filter((k) => dict.get(k) instanceof Map);
    if (wrappers.length !== 1) break;
    const inner = dict.get(wrappers[0]!) as Dict;
    path += `${wrappers[0]!}.`;
    if (unwrapped.has(inner)) refuse(`${label(path)} leads back to a dict that contains it (the pickle's dicts form a cycle)`);
    unwrapped.add(inner);
    dict = inner;
  }

  const out: Array<[string, TorchTensorRef]> = [];
  const names = new Set<string>();
  const reached = new Map<Dict, string>(); // every dict walked, with the prefix it was first reached by
  const open = new Set<Dict>(); // the dicts on the current path
  const walk = (d: Dict, prefix: string, depth: number): void => {
    if (open.has(d)) refuse(`${label(prefix)} contains itself (the pickle's dicts form a cycle)`);
    const first = reached.get(d);
    if (first !== undefined) refuse(`${label(prefix)} is the same dict as ${label(first)}: a state dict may share tensors, not dicts`);
    if (depth > 32) refuse('dicts nested more than 32 deep');
    reached.set(d, prefix);
    open.add(d);
    for (const [k, v] of d) {
      if (!(v instanceof TorchTensorRef) && !(v instanceof Map)) continue; // scalars, lists, None: not tensors
      if (typeof k !== 'string' && typeof k !== 'number') refuse(`state-dict key is a ${describe(k)}, not a string`);
      const name = prefix + String(k);
      if (v instanceof Map) { walk(v, `${name}.`, depth + 1); continue; }
      if (names.has(name)) refuse(`tensor name '${name}' appears twice`);
      names.add(name);
      out.push([name, v]);
    }
    open.delete(d);
  };
  walk(dict, '', 0);
  return out;
}

export class TorchCheckpoint implements TensorSource {
  readonly format = 'pytorch' as const;
  private closed = false;
  private readonly offsets = new Map<string, Promise<number>>();

  private constructor(
    readonly path: string,
    private readonly src: ByteSource,
    /** Top folder of the archive, e.g. `pytorch_model` (empty when entries sit at the root). */
    readonly archive: string,
    readonly byteorder: 'little' | 'big',
    private readonly entries: Map<string, Entry>,
  ) {}

  /** Opens a file path (Node), or any byte source: a URL (`openUrlSource`), a Blob or File (`blobSource`). */
  static async open(from: string | ByteSource): Promise<TorchCheckpoint> {
    const src = typeof from === 'string' ? await openFileSource(from) : from;
    try {
      return await TorchCheckpoint.load(src);
    } catch (e) {
      await src.close().catch(() => undefined);
      throw e;
    }
  }

  private static async load(src: ByteSource): Promise<TorchCheckpoint> {
    const file = src.name;
    const dir = await readZipDirectory(src);

    const pkls = dir.entries.filter((e) => /^(?:[^/]+\/)?data\.pkl$/.test(e.name));
    if (pkls.length === 0) {
      const sample = dir.entries.slice(0, 5).map((e) => `'${e.name}'`).join(', ');
      throw new WeightFileError(file, `no '<archive>/data.pkl' entry: not a torch.save checkpoint (entries: ${sample || 'none'})`);
    }
    if (pkls.length > 1) {
      throw new WeightFileError(file, `several data.pkl entries (${pkls.map((e) => `'${e.name}'`).join(', ')}): ambiguous archive`);
    }
    const pklEntry = pkls[0]!;
    const prefix = pklEntry.name.slice(0, -'data.pkl'.length); // '' or '<archive>/'
    const archive = prefix.replace(/\/$/, '');

    const pickle = await readSmallEntry(src, pklEntry, MAX_PICKLE_BYTES);
    const root = unpickle(pickle, { file, where: pklEntry.name });

    let byteorder: 'little' | 'big' = 'little';
    const bo = dir.byName.get(`${prefix}byteorder`);
    if (bo) {
      const text = new TextDecoder().decode(await readSmallEntry(src, bo, 64)).trim();
      if (text !== 'little' && text !== 'big') throw new WeightFileError(file, `'${bo.name}' says '${text}', expected 'little' or 'big'`);
      byteorder = text;
    }

    const entries = new Map<string, Entry>();
    for (const [name, t] of collectTensors(file, pklEntry.name, root)) {
      const storage = `data/${t.storage.key}`;
      const bad = (msg: string): never => { throw new WeightFileError(file, `tensor '${name}': ${msg}`); };
      const zip = dir.byName.get(prefix + storage);
      if (!zip) bad(`storage entry '${prefix + storage}' is missing from the archive`);
      const ze = zip!;
      if (ze.method !== 0) {
        bad(`storage entry '${ze.name}' is compressed (zip method ${ze.method}); torch.save stores storages uncompressed and this reader only reads them in place`);
      }
      if (ze.compressedSize !== ze.uncompressedSize) {
        bad(`storage entry '${ze.name}' is stored but its sizes differ (${ze.compressedSize} vs ${ze.uncompressedSize})`);
      }
      const esize = DTYPE_SIZE[t.dtype];
      // The pickle's storage size, in bytes (untyped storages count bytes).
      const declaredBytes = t.storage.numel * (t.storage.dtype === null ? 1 : DTYPE_SIZE[t.storage.dtype]);
      if (!Number.isSafeInteger(declaredBytes)) bad(`storage '${storage}' declares an impossible size`);
      if (ze.uncompressedSize < declaredBytes) {
        bad(`storage '${storage}' is declared as ${t.storage.numel} ${t.storage.dtype ?? 'bytes'} (${declaredBytes} bytes) but its entry '${ze.name}' holds ${ze.uncompressedSize} bytes`);
      }
      const storageNumel = Math.floor(declaredBytes / esize);
      const n = numel(t.size);
      if (!Number.isSafeInteger(n)) bad(`shape ${JSON.stringify(t.size)} is too large`);
      if (n > 0) {
        let last = t.storageOffset;
        for (let i = 0; i < t.size.length; i++) last += (t.size[i]! - 1) * t.stride[i]!;
        if (!Number.isSafeInteger(last)) bad(`view (offset ${t.storageOffset}, stride ${JSON.stringify(t.stride)}) is out of range`);
        if (last + 1 > storageNumel) {
          bad(`storage '${storage}' has ${storageNumel} elements, tensor '${name}' needs ${last + 1} (offset ${t.storageOffset}, shape ${JSON.stringify(t.size)}, stride ${JSON.stringify(t.stride)})`);
        }
      }
      entries.set(name, {
        name, dtype: t.dtype, shape: [...t.size], zip: ze,
        view: {
          storage, entry: ze.name, storageOffset: t.storageOffset, stride: [...t.stride], storageNumel,
          contiguous: isContiguous(t.size, t.stride),
        },
      });
    }
    return new TorchCheckpoint(file, src, archive, byteorder, entries);
  }

  keys(): string[] { return [...this.entries.keys()]; }

  has(name: string): boolean { return this.entries.has(name); }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new WeightFileError(this.path, `no tensor '${name}' in this checkpoint`);
    return e;
  }

  info(name: string): TensorInfo {
    const { dtype, shape } = this.entry(name);
    return { name, dtype, shape };
  }

  /** Where `name` lies in its storage (for diagnostics). */
  view(name: string): TorchTensorView { return this.entry(name).view; }

  private dataOffset(zip: ZipEntry): Promise<number> {
    let p = this.offsets.get(zip.name);
    if (!p) {
      p = entryDataOffset(this.src, zip);
      p.catch(() => this.offsets.delete(zip.name));
      this.offsets.set(zip.name, p);
    }
    return p;
  }

  async readRaw(name: string): Promise<RawTensor> {
    if (this.closed) throw new WeightFileError(this.path, `reading tensor '${name}' after close()`);
    const e = this.entry(name);
    const { dtype, shape, view } = e;
    const esize = DTYPE_SIZE[dtype];
    const n = numel(shape);
    const nbytes = n * esize;
    if (nbytes > MAX_TENSOR_BYTES) {
      throw new WeightFileError(this.path, `tensor '${name}' has ${nbytes} bytes, more than this runtime can hold in one buffer`);
    }
    const out = new Uint8Array(nbytes);
    if (n === 0) return { name, dtype, shape, bytes: out };
    const base = await this.dataOffset(e.zip);
    const what = `tensor '${name}' (storage '${view.storage}')`;
    if (view.contiguous) {
      await readExactly(this.src, base + view.storageOffset * esize, nbytes, what, out);
    } else {
      // Read the span of the storage the view touches, then gather element by element (strides >= 0).
      let last = view.storageOffset;
      for (let i = 0; i < shape.length; i++) last += (shape[i]! - 1) * view.stride[i]!;
      const spanBytes = (last - view.storageOffset + 1) * esize;
      if (spanBytes > MAX_TENSOR_BYTES) {
        throw new WeightFileError(this.path, `tensor '${name}': its strided view spans ${spanBytes} bytes, too many to read at once`);
      }
      const span = await readExactly(this.src, base + view.storageOffset * esize, spanBytes, what);
      gather(span, out, shape, view.stride, esize);
    }
    if (this.byteorder === 'big' && esize > 1) swapBytes(out, esize);
    return { name, dtype, shape, bytes: out };
  }

  async readFloat32(name: string): Promise<HostTensor> {
    const raw = await this.readRaw(name);
    const data = ownedToFloat32(raw.bytes, raw.dtype); // readRaw's buffer is its own: F32 is wrapped
    if (!data) throw new WeightFileError(this.path, `tensor '${name}' is ${raw.dtype}; readFloat32 only converts float dtypes`);
    return { shape: raw.shape, data };
  }

  whyNotInPlace(name: string): string | null {
    const { view, dtype } = this.entry(name);
    if (!view.contiguous) return `a strided view of storage '${view.storage}' (stride ${JSON.stringify(view.stride)}), gathered on the host`;
    if (this.byteorder === 'big' && DTYPE_SIZE[dtype] > 1) return 'a big-endian archive, byte-swapped on the host';
    return null;
  }

  /** A contiguous little-endian tensor's bytes are one run of its storage entry, stored uncompressed: a positional read. */
  async readInto(name: string, from: number, bytes: number, into: () => Uint8Array): Promise<void> {
    if (this.closed) throw new WeightFileError(this.path, `reading tensor '${name}' after close()`);
    const e = this.entry(name);
    const why = this.whyNotInPlace(name);
    if (why) throw new WeightFileError(this.path, `tensor '${name}' cannot be read in place: ${why}`);
    const esize = DTYPE_SIZE[e.dtype];
    const total = numel(e.shape) * esize;
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(bytes) || from < 0 || bytes < 0 || from + bytes > total) {
      throw new RangeError(`${this.path}: tensor '${name}': bytes [${from}, ${from + bytes}) are outside its ${total} bytes`);
    }
    if (bytes === 0) return;
    const base = await this.dataOffset(e.zip);
    await this.src.read(base + e.view.storageOffset * esize + from, bytes, `tensor '${name}' (storage '${e.view.storage}')`, into);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.src.close();
  }
}

/** Opens a `torch.save` checkpoint; parses the archive directory and the pickle, validates every tensor view. */
export function openTorchCheckpoint(from: string | ByteSource): Promise<TorchCheckpoint> {
  return TorchCheckpoint.open(from);
}

/** Reads a small whole entry (data.pkl, byteorder), inflating it if deflated, checking its CRC. */
async function readSmallEntry(src: ByteSource, e: ZipEntry, limit: number): Promise<Uint8Array> {
  const file = src.name;
  if (e.uncompressedSize > limit || e.compressedSize > limit) {
    throw new WeightFileError(file, `'${e.name}' is ${e.uncompressedSize} bytes, more than the ${limit}-byte limit`);
  }
  const start = await entryDataOffset(src, e);
  const stored = await readExactly(src, start, e.compressedSize, `'${e.name}'`);
  let data: Uint8Array;
  if (e.method === 0) data = stored;
  else if (e.method === 8) {
    data = await inflateRaw(stored, e.uncompressedSize, file, e.name);
  } else {
    throw new WeightFileError(file, `'${e.name}' uses unsupported zip compression method ${e.method}`);
  }
  const crc = crc32(data);
  if (crc !== e.crc32) {
    throw new WeightFileError(file, `'${e.name}': CRC-32 mismatch (stored ${e.crc32.toString(16)}, computed ${crc.toString(16)}): corrupt archive`);
  }
  return data;
}

/**
 * Inflates a raw-deflate entry with the web-standard DecompressionStream (Node >= 20 and browsers), stopping
 * as soon as the output would exceed `expected` bytes, so a deflate bomb costs no more than that.
 */
async function inflateRaw(stored: Uint8Array, expected: number, file: string, entry: string): Promise<Uint8Array> {
  const out = new Uint8Array(expected);
  let done = 0;
  const reader = new Blob([stored as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate-raw')).getReader();
  try {
    for (;;) {
      const { done: end, value } = await reader.read();
      if (end) break;
      if (done + value.byteLength > expected) {
        throw new WeightFileError(file, `'${entry}': inflates to more than the ${expected} bytes its zip entry declares`);
      }
      out.set(value, done);
      done += value.byteLength;
    }
  } catch (err) {
    if (err instanceof WeightFileError) throw err;
    throw new WeightFileError(file, `'${entry}': cannot inflate (${(err as Error).message})`);
  } finally {
    reader.cancel().catch(() => undefined);
  }
  if (done !== expected) throw new WeightFileError(file, `'${entry}': inflated to ${done} bytes, expected ${expected}`);
  return out;
}

/** Copies a strided view (`span` starts at the view's first element) into contiguous `out`. */
function gather(span: Uint8Array, out: Uint8Array, shape: readonly number[], stride: readonly number[], esize: number): void {
  const nd = shape.length;
  if (nd === 0) { out.set(span.subarray(0, esize)); return; }
  const innerN = shape[nd - 1]!;
  const innerStride = stride[nd - 1]! * esize;
  const runBytes = innerN * esize;
  const idx = new Array<number>(nd - 1).fill(0);
  let src = 0;
  let dst = 0;
  for (;;) {
    if (innerStride === esize) {
      out.set(span.subarray(src, src + runBytes), dst);
      dst += runBytes;
    } else {
      for (let j = 0, s = src; j < innerN; j++, s += innerStride) {
        for (let b = 0; b < esize; b++) out[dst++] = span[s + b]!;
      }
    }
    // Advance the odometer over the outer dimensions.
    let d = nd - 2;
    for (; d >= 0; d--) {
      idx[d]!++;
      src += stride[d]! * esize;
      if (idx[d]! < shape[d]!) break;
      src -= shape[d]! * stride[d]! * esize;
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

function swapBytes(b: Uint8Array, esize: number): void {
  for (let i = 0; i < b.length; i += esize) {
    for (let lo = i, hi = i + esize - 1; lo < hi; lo++, hi--) {
      const t = b[lo]!;
      b[lo] = b[hi]!;
      b[hi] = t;
    }
  }
}

