/**
 * safetensors reader and writer.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON header
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {str: str} }`,
 * then the data section; offsets are relative to the data section.
 * The reader validates the whole header up front and reads tensors lazily by offset, from any byte
 * source (a file path in Node, a URL or a Blob: see source.ts).
 */
import { createFile } from '../host/files.js';
import { openFileSource } from '../host/file-source.js';
import { ownedToFloat32 } from './dtype.js';
import type { ByteSource } from './source.js';
import {
  DTYPE_SIZE, isDType, numel, WeightFileError,
  type DType, type HostTensor, type RawTensor, type TensorInfo, type TensorSource,
} from './types.js';

/** A header larger than this is refused (the real bge-m3 header is ~40 kB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

interface Entry extends TensorInfo {
  readonly begin: number; // absolute file offset
  readonly end: number;
}

function parseHeader(file: string, json: string, dataStart: number, fileSize: number): {
  entries: Map<string, Entry>; metadata: Record<string, string>;
} {
  let header: unknown;
  try {
    header = JSON.parse(json);
  } catch (e) {
    throw new WeightFileError(file, `header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new WeightFileError(file, 'header is not a JSON object');
  }
  const entries = new Map<string, Entry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value) ||
          !Object.values(value).every((v) => typeof v === 'string')) {
        throw new WeightFileError(file, '__metadata__ must be an object of strings');
      }
      metadata = value as Record<string, string>;
      continue;
    }
    const bad = (what: string): never => { throw new WeightFileError(file, `tensor '${name}': ${what}`); };
    if (value === null || typeof value !== 'object') bad('header entry is not an object');
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (typeof dtype !== 'string' || !isDType(dtype)) bad(`unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 ||
        !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      bad(`data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 <= begin <= end`);
    }
    const [b, e] = offsets as [number, number];
    const expected = numel(shape as number[]) * DTYPE_SIZE[dtype as DType];
    if (e - b !== expected) {
      bad(`shape ${JSON.stringify(shape)} × ${DTYPE_SIZE[dtype as DType]} bytes (${dtype}) = ${expected} bytes, but data_offsets span ${e - b}`);
    }
    if (dataStart + e > fileSize) {
      bad(`data_offsets [${b}, ${e}] run past the end of the file (data section is ${fileSize - dataStart} bytes: truncated file?)`);
    }
    entries.set(name, { name, dtype: dtype as DType, shape: shape as number[], begin: dataStart + b, end: dataStart + e });
  }
  // As in the reference implementation, the spans (sorted by offset) must tile the data section
  // exactly: no overlap, no gap, no trailing bytes.
  const spans = [...entries.values()].sort((x, y) => x.begin - y.begin || x.end - y.end);
  let cursor = dataStart;
  for (const cur of spans) {
    if (cur.begin < cursor) {
      throw new WeightFileError(file, `tensor '${cur.name}' overlaps the tensor before it in the data section`);
    }
    if (cur.begin > cursor) {
      throw new WeightFileError(file, `gap of ${cur.begin - cursor} bytes before tensor '${cur.name}' in the data section`);
    }
    cursor = cur.end;
  }
  if (cursor !== fileSize) {
    throw new WeightFileError(file, `${fileSize - cursor} bytes after the last tensor: the header does not describe the whole file`);
  }
  return { entries, metadata };
}

export class SafetensorsFile implements TensorSource {
  readonly format = 'safetensors' as const;

  private constructor(
    readonly path: string,
    private readonly src: ByteSource,
    private readonly entries: Map<string, Entry>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  /** Opens a file path (Node), or any byte source: a URL (`openUrlSource`), a Blob or File (`blobSource`). */
  static async open(from: string | ByteSource): Promise<SafetensorsFile> {
    const src = typeof from === 'string' ? await openFileSource(from) : from;
    const path = src.name;
    try {
      const { size } = src;
      if (size < 8) throw new WeightFileError(path, `file is ${size} bytes, too short for a safetensors header`);
      const lenBuf = await src.read(0, 8, 'header length');
      const n = new DataView(lenBuf.buffer, lenBuf.byteOffset, 8).getBigUint64(0, true);
      if (n > BigInt(MAX_HEADER_BYTES)) throw new WeightFileError(path, `header length ${n} is larger than ${MAX_HEADER_BYTES} bytes: not a safetensors file?`);
      if (8n + n > BigInt(size)) throw new WeightFileError(path, `header length ${n} runs past the end of the ${size}-byte file (truncated?)`);
      const headerBuf = await src.read(8, Number(n), 'header');
      const { entries, metadata } = parseHeader(path, new TextDecoder().decode(headerBuf), 8 + Number(n), size);
      return new SafetensorsFile(path, src, entries, metadata);
    } catch (e) {
      await src.close();
      throw e;
    }
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): TensorInfo {
    const e = this.entries.get(name);
    if (!e) throw new WeightFileError(this.path, `no tensor named '${name}'`);
    return { name: e.name, dtype: e.dtype, shape: e.shape };
  }

  async readRaw(name: string): Promise<RawTensor> {
    const e = this.entries.get(name);
    if (!e) throw new WeightFileError(this.path, `no tensor named '${name}'`);
    const bytes = await this.src.read(e.begin, e.end - e.begin, `tensor '${name}'`);
    return { name: e.name, dtype: e.dtype, shape: e.shape, bytes };
  }

  /** Always null: safetensors stores every tensor contiguous and little-endian. */
  whyNotInPlace(name: string): string | null {
    this.info(name); // an unknown name still throws
    return null;
  }

  /** See TensorSource.readInto. */
  async readInto(name: string, from: number, bytes: number, into: () => Uint8Array): Promise<void> {
    const e = this.entries.get(name);
    if (!e) throw new WeightFileError(this.path, `no tensor named '${name}'`);
    if (from < 0 || bytes < 0 || e.begin + from + bytes > e.end) {
      throw new RangeError(`${this.path}: tensor '${name}': bytes [${from}, ${from + bytes}) are outside its ${e.end - e.begin} bytes`);
    }
    await this.src.read(e.begin + from, bytes, `tensor '${name}'`, into);
  }

  async readFloat32(name: string): Promise<HostTensor> {
    const raw = await this.readRaw(name);
    const data = ownedToFloat32(raw.bytes, raw.dtype); // readRaw's buffer is its own: F32 is wrapped
    if (!data) throw new WeightFileError(this.path, `tensor '${name}' has dtype ${raw.dtype}, expected a float dtype`);
    return { shape: raw.shape, data };
  }

  async close(): Promise<void> {
    await this.src.close();
  }
}

export function openSafetensors(from: string | ByteSource): Promise<SafetensorsFile> {
  return SafetensorsFile.open(from);
}

/** One tensor to write: its bytes are produced on demand so a writer never holds the whole model. */
export interface TensorToWrite {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly bytes: () => Promise<Uint8Array> | Uint8Array;
}

/**
 * Writes a safetensors file: tensors in sorted-name order, header padded with spaces to an
 * 8-byte boundary. Writes to `<path>` with flag 'wx' unless `overwrite` (never clobbers silently).
 * `onTensor` is called after each tensor (for progress).
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  opts: { metadata?: Record<string, string>; overwrite?: boolean; onTensor?: (name: string, bytes: number) => void } = {},
): Promise<void> {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = opts.metadata;
  let offset = 0;
  for (const t of sorted) {
    if (t.name in header) throw new Error(`writeSafetensors: duplicate tensor name '${t.name}'`);
    const size = numel(t.shape) * DTYPE_SIZE[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  const utf8 = new TextEncoder();
  const pad = (8 - ((utf8.encode(json).byteLength + 8) % 8)) % 8;
  json += ' '.repeat(pad);
  const headerBytes = utf8.encode(json);
  const fh = await createFile(path, opts.overwrite ? 'w' : 'wx');
  try {
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
    await fh.write(len);
    await fh.write(headerBytes);
    for (const t of sorted) {
      const bytes = await t.bytes();
      const size = numel(t.shape) * DTYPE_SIZE[t.dtype];
      if (bytes.byteLength !== size) {
        throw new Error(`writeSafetensors: tensor '${t.name}' has ${bytes.byteLength} bytes, shape ${JSON.stringify(t.shape)} ${t.dtype} needs ${size}`);
      }
      let done = 0;
      while (done < bytes.byteLength) {
        const { bytesWritten } = await fh.write(bytes, done, Math.min(bytes.byteLength - done, 1 << 30));
        done += bytesWritten;
      }
      opts.onTensor?.(t.name, size);
    }
  } finally {
    await fh.close();
  }
}
