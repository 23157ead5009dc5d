/**
 * A writer of the `torch.save` zip format (the format FlagEmbedding's `sparse_linear.pt` and
 * `colbert_linear.pt` use), so a head trained here can be handed back to PyTorch users; the tests
 * also build ordinary, odd and hostile checkpoints with it (strided views, shared storages, other
 * dtypes, compressed or truncated entries, hand-made pickles).
 *
 * The layout mimics PyTorch's writer: entries stored, local headers with the data-descriptor flag and
 * zero sizes, an `FB` extra field padding each entry's data to a 64-byte boundary, a data descriptor
 * after the data, `<archive>/data.pkl` first and `<archive>/version` last. Storages are written one at a
 * time (each may be produced lazily, in chunks), so a multi-GB checkpoint never sits in memory.
 */
import { open, type FileHandle } from 'node:fs/promises';
import * as zlib from 'node:zlib';
import { crc32 as crc32js } from './zip.js';
import { toFloat16Bits } from './dtype.js';

const crc32: (data: Uint8Array, value?: number) => number =
  typeof zlib.crc32 === 'function' ? (d, v) => zlib.crc32(d, v ?? 0) : crc32js;

// ---------------------------------------------------------------------------------------------
// Pickle

/** Emits pickle opcodes by hand. Every method appends one opcode (with its argument). */
export class PickleWriter {
  private chunks: number[] = [];
  private memoNext = 0;

  raw(bytes: ArrayLike<number>): this {
    for (let i = 0; i < bytes.length; i++) this.chunks.push(bytes[i]!);
    return this;
  }
  private op(code: number, ...args: number[]): this { return this.raw([code, ...args]); }
  private le(n: number, bytes: number): number[] {
    const out: number[] = [];
    let v = BigInt(n);
    for (let i = 0; i < bytes; i++) { out.push(Number(v & 0xffn)); v >>= 8n; }
    return out;
  }

  proto(v = 2): this { return this.op(0x80, v); }
  stop(): this { return this.op(0x2e); }
  mark(): this { return this.op(0x28); }
  tuple(): this { return this.op(0x74); }
  tupleN(n: 0 | 1 | 2 | 3): this { return this.op([0x29, 0x85, 0x86, 0x87][n]!); }
  emptyDict(): this { return this.op(0x7d); }
  emptyList(): this { return this.op(0x5d); }
  setitem(): this { return this.op(0x73); }
  setitems(): this { return this.op(0x75); }
  append(): this { return this.op(0x61); }
  appends(): this { return this.op(0x65); }
  reduce(): this { return this.op(0x52); }
  build(): this { return this.op(0x62); }
  newobj(): this { return this.op(0x81); }
  binpersid(): this { return this.op(0x51); }
  none(): this { return this.op(0x4e); }
  bool(v: boolean): this { return this.op(v ? 0x88 : 0x89); }
  /** BINPUT with the next memo index; returns the index via `cb`. */
  put(cb?: (index: number) => void): this {
    const i = this.memoNext++;
    cb?.(i);
    return i < 256 ? this.op(0x71, i) : this.op(0x72, ...this.le(i, 4));
  }
  memoize(): this { this.memoNext++; return this.op(0x94); }
  get(i: number): this { return i < 256 ? this.op(0x68, i) : this.op(0x6a, ...this.le(i, 4)); }
  int(n: number): this {
    if (Number.isInteger(n) && n >= 0 && n < 256) return this.op(0x4b, n);
    if (Number.isInteger(n) && n >= 0 && n < 65536) return this.op(0x4d, ...this.le(n, 2));
    if (Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31) return this.op(0x4a, ...this.le(n >>> 0, 4));
    // LONG1: little-endian two's complement, minimal length.
    const bytes: number[] = [];
    let v = BigInt(n);
    for (;;) {
      const b = Number(v & 0xffn);
      bytes.push(b);
      v >>= 8n;
      if ((v === 0n && !(b & 0x80)) || (v === -1n && b & 0x80)) break;
    }
    return this.op(0x8a, bytes.length, ...bytes);
  }
  float(x: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, false);
    return this.op(0x47, ...b);
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    return b.length < 256 ? this.op(0x8c, b.length, ...b) : this.op(0x58, ...this.le(b.length, 4), ...b);
  }
  /** BINUNICODE (4-byte length), as torch's protocol-2 pickles use. */
  binunicode(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.op(0x58, ...this.le(b.length, 4), ...b);
  }
  global(module: string, name: string): this {
    return this.op(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
  }
  stackGlobal(module: string, name: string): this { return this.str(module).str(name).op(0x93); }
  bytes(): Uint8Array { return Uint8Array.from(this.chunks); }
}

export type StorageClass =
  | 'FloatStorage' | 'HalfStorage' | 'BFloat16Storage' | 'DoubleStorage' | 'LongStorage' | 'IntStorage'
  | 'ShortStorage' | 'CharStorage' | 'ByteStorage' | 'BoolStorage';

export const STORAGE_ELEMENT_SIZE: Record<StorageClass, number> = {
  FloatStorage: 4, HalfStorage: 2, BFloat16Storage: 2, DoubleStorage: 8, LongStorage: 8, IntStorage: 4,
  ShortStorage: 2, CharStorage: 1, ByteStorage: 1, BoolStorage: 1,
};

/** Bytes of one storage: whole, or produced lazily (whole or in chunks) when written. */
export type StorageBytes =
  | Uint8Array
  | (() => Uint8Array | Promise<Uint8Array> | Iterable<Uint8Array> | AsyncIterable<Uint8Array>);

export interface StorageSpec {
  /** Storage key: the data goes to `<archive>/data/<key>`. */
  readonly key: string;
  readonly type: StorageClass;
  /** Element count written into the pickle (defaults to the byte length / element size). */
  readonly numel?: number;
  readonly bytes: StorageBytes;
  /** Byte length, required when `bytes` is lazy. */
  readonly byteLength?: number;
}

export interface TensorSpec {
  readonly name: string;
  readonly storage: string;
  readonly size: readonly number[];
  /** Defaults to row-major contiguous. */
  readonly stride?: readonly number[];
  readonly offset?: number;
}

export function contiguousStride(size: readonly number[]): number[] {
  const s = new Array<number>(size.length);
  let acc = 1;
  for (let i = size.length - 1; i >= 0; i--) { s[i] = acc; acc *= size[i]!; }
  return s;
}

export interface StateDictPickleOptions {
  /** Wrap each tensor in `torch._utils._rebuild_parameter(t, requires_grad, OrderedDict())`. */
  readonly parameters?: boolean;
  /** Put the state dict under these keys (`['state_dict']` → `{'state_dict': OrderedDict(...)}`). */
  readonly nestUnder?: readonly string[];
  /** Append an OrderedDict BUILD state with `_metadata`, as torch's module state dicts carry. */
  readonly metadata?: boolean;
}

/** The protocol-2 pickle torch.save writes for an OrderedDict state dict of `_rebuild_tensor_v2` tensors. */
export function stateDictPickle(tensors: readonly TensorSpec[], storages: readonly StorageSpec[], opts: StateDictPickleOptions = {}): Uint8Array {
  const p = new PickleWriter().proto(2);
  const byKey = new Map(storages.map((s) => [s.key, s]));
  const memo = new Map<string, number>();
  const remember = (k: string) => (i: number) => { memo.set(k, i); };
  const globalRef = (module: string, name: string): void => {
    const k = `g:${module}.${name}`;
    const i = memo.get(k);
    if (i !== undefined) p.get(i);
    else p.global(module, name).put(remember(k));
  };
  const orderedDict = (): void => { globalRef('collections', 'OrderedDict'); p.tupleN(0).reduce().put(); };

  for (const key of opts.nestUnder ?? []) { p.emptyDict().put().binunicode(key).put(); }
  orderedDict();
  p.mark();
  for (const t of tensors) {
    const s = byKey.get(t.storage);
    if (!s) throw new Error(`stateDictPickle: tensor '${t.name}' names unknown storage '${t.storage}'`);
    p.binunicode(t.name).put();
    if (opts.parameters) globalRef('torch._utils', '_rebuild_parameter');
    globalRef('torch._utils', '_rebuild_tensor_v2');
    p.mark();
    // Persistent id ('storage', torch.<Type>Storage, key, 'cpu', numel); repeated for a shared storage, as torch does.
    p.mark().binunicode('storage').put();
    globalRef('torch', s.type);
    p.binunicode(s.key).put().binunicode('cpu').put().int(storageNumel(s)).tuple().put();
    p.binpersid();
    p.int(t.offset ?? 0);
    for (const list of [t.size, t.stride ?? contiguousStride(t.size)]) {
      if (list.length <= 3) { for (const d of list) p.int(d); p.tupleN(list.length as 0 | 1 | 2 | 3); }
      else { p.mark(); for (const d of list) p.int(d); p.tuple(); }
      p.put();
    }
    p.bool(false);
    orderedDict();
    p.tuple().put().reduce().put();
    if (opts.parameters) { p.bool(true); orderedDict(); p.tupleN(3).put().reduce().put(); }
  }
  p.setitems();
  if (opts.metadata) {
    // state: {'_metadata': OrderedDict({'': {'version': 1}})}
    p.emptyDict().put().binunicode('_metadata').put();
    orderedDict();
    p.binunicode('').put().emptyDict().put().binunicode('version').put().int(1).setitem().setitem();
    p.setitem().build();
  }
  for (let i = 0; i < (opts.nestUnder ?? []).length; i++) p.setitem();
  return p.stop().bytes();
}

function storageNumel(s: StorageSpec): number {
  if (s.numel !== undefined) return s.numel;
  const len = s.bytes instanceof Uint8Array ? s.bytes.byteLength : s.byteLength;
  if (len === undefined) throw new Error(`storage '${s.key}': lazy bytes need byteLength or numel`);
  return len / STORAGE_ELEMENT_SIZE[s.type];
}

// ---------------------------------------------------------------------------------------------
// Zip

interface WrittenEntry {
  name: Uint8Array;
  offset: number;
  size: number;
  crc: number;
  method: number;
  compressedSize: number;
  zip64: boolean;
}

export interface ZipWriterOptions {
  /** 'always' writes zip64 records for every entry and the archive end even when not needed. */
  readonly zip64?: 'auto' | 'always';
  /** Data alignment (torch uses 64). */
  readonly align?: number;
  /** Open flags; 'wx' refuses to overwrite. */
  readonly flags?: string;
}

const U32_MAX = 0xffffffff;

/** Streams stored (or, for tests, deflated) entries to a file with positional writes. */
export class ZipWriter {
  private pos = 0;
  private readonly written: WrittenEntry[] = [];

  private constructor(private readonly fh: FileHandle, private readonly opts: ZipWriterOptions) {}

  static async create(path: string, opts: ZipWriterOptions = {}): Promise<ZipWriter> {
    return new ZipWriter(await open(path, opts.flags ?? 'w'), opts);
  }

  private async write(b: Uint8Array): Promise<void> {
    let done = 0;
    while (done < b.byteLength) {
      const { bytesWritten } = await this.fh.write(b, done, Math.min(b.byteLength - done, 1 << 30), this.pos + done);
      done += bytesWritten;
    }
    this.pos += b.byteLength;
  }

  /**
   * Adds an entry of `size` bytes. `data` is the bytes, or chunks produced on demand.
   * `deflate` compresses it (method 8; whole entry in memory: tests only).
   */
  async add(
    name: string, size: number, data: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
    opts: { deflate?: boolean } = {},
  ): Promise<void> {
    const nameBytes = new TextEncoder().encode(name);
    const offset = this.pos;
    let payload: Iterable<Uint8Array> | AsyncIterable<Uint8Array> = data instanceof Uint8Array ? [data] : data;
    let compressedSize = size;
    let crc = 0;
    let method = 0;
    if (opts.deflate) {
      const whole = data instanceof Uint8Array ? data : await collect(payload);
      crc = crc32(whole);
      const z = zlib.deflateRawSync(whole);
      payload = [z];
      compressedSize = z.byteLength;
      method = 8;
    }
    const zip64 = this.opts.zip64 === 'always' || size >= U32_MAX || compressedSize >= U32_MAX || offset >= U32_MAX;
    const align = this.opts.align ?? 64;
    const z64Extra = zip64 ? 20 : 0; // id, len, usize, csize
    const before = offset + 30 + nameBytes.length + z64Extra + 4;
    const pad = align > 1 ? (align - (before % align)) % align : 0;
    const extraLen = z64Extra + 4 + pad;
    const h = new Uint8Array(30 + nameBytes.length + extraLen);
    const dv = new DataView(h.buffer);
    dv.setUint32(0, 0x04034b50, true);
    dv.setUint16(4, zip64 ? 45 : 20, true);
    dv.setUint16(6, 0x08, true); // sizes and CRC in the data descriptor
    dv.setUint16(8, method, true);
    dv.setUint32(18, zip64 ? U32_MAX : 0, true);
    dv.setUint32(22, zip64 ? U32_MAX : 0, true);
    dv.setUint16(26, nameBytes.length, true);
    dv.setUint16(28, extraLen, true);
    h.set(nameBytes, 30);
    let x = 30 + nameBytes.length;
    if (zip64) { dv.setUint16(x, 0x0001, true); dv.setUint16(x + 2, 16, true); x += 20; }
    dv.setUint16(x, 0x4246, true); // 'FB' padding field, as torch writes
    dv.setUint16(x + 2, pad, true);
    h.fill(0x5a, x + 4);
    await this.write(h);

    let written = 0;
    for await (const chunk of payload) {
      if (method === 0) crc = crc32(chunk, crc);
      await this.write(chunk);
      written += chunk.byteLength;
    }
    if (written !== compressedSize) throw new Error(`ZipWriter: entry '${name}' got ${written} bytes, expected ${compressedSize}`);

    const d = new Uint8Array(zip64 ? 24 : 16);
    const ddv = new DataView(d.buffer);
    ddv.setUint32(0, 0x08074b50, true);
    ddv.setUint32(4, crc, true);
    if (zip64) { ddv.setBigUint64(8, BigInt(compressedSize), true); ddv.setBigUint64(16, BigInt(size), true); }
    else { ddv.setUint32(8, compressedSize, true); ddv.setUint32(12, size, true); }
    await this.write(d);
    this.written.push({ name: nameBytes, offset, size, crc, method, compressedSize, zip64 });
  }

  /** Writes the central directory and the end records, and closes the file. */
  async finish(): Promise<void> {
    const cdStart = this.pos;
    const parts: Uint8Array[] = [];
    for (const e of this.written) {
      const fields: bigint[] = [];
      const big = e.zip64 || e.offset >= U32_MAX;
      if (big) fields.push(BigInt(e.size), BigInt(e.compressedSize), BigInt(e.offset));
      const extraLen = big ? 4 + 8 * fields.length : 0;
      const c = new Uint8Array(46 + e.name.length + extraLen);
      const dv = new DataView(c.buffer);
      dv.setUint32(0, 0x02014b50, true);
      dv.setUint16(4, big ? 45 : 20, true);
      dv.setUint16(6, big ? 45 : 20, true);
      dv.setUint16(8, 0x08, true);
      dv.setUint16(10, e.method, true);
      dv.setUint32(16, e.crc, true);
      dv.setUint32(20, big ? U32_MAX : e.compressedSize, true);
      dv.setUint32(24, big ? U32_MAX : e.size, true);
      dv.setUint16(28, e.name.length, true);
      dv.setUint16(30, extraLen, true);
      dv.setUint32(42, big ? U32_MAX : e.offset, true);
      c.set(e.name, 46);
      if (big) {
        let x = 46 + e.name.length;
        dv.setUint16(x, 0x0001, true);
        dv.setUint16(x + 2, 8 * fields.length, true);
        x += 4;
        for (const f of fields) { dv.setBigUint64(x, f, true); x += 8; }
      }
      parts.push(c);
    }
    for (const p of parts) await this.write(p);
    const cdSize = this.pos - cdStart;
    const count = this.written.length;
    const zip64 = this.opts.zip64 === 'always' || cdStart >= U32_MAX || count >= 0xffff || this.written.some((e) => e.zip64);
    if (zip64) {
      const recOff = this.pos;
      const r = new Uint8Array(56);
      const dv = new DataView(r.buffer);
      dv.setUint32(0, 0x06064b50, true);
      dv.setBigUint64(4, 44n, true);
      dv.setUint16(12, 45, true);
      dv.setUint16(14, 45, true);
      dv.setBigUint64(24, BigInt(count), true);
      dv.setBigUint64(32, BigInt(count), true);
      dv.setBigUint64(40, BigInt(cdSize), true);
      dv.setBigUint64(48, BigInt(cdStart), true);
      await this.write(r);
      const l = new Uint8Array(20);
      const ldv = new DataView(l.buffer);
      ldv.setUint32(0, 0x07064b50, true);
      ldv.setBigUint64(8, BigInt(recOff), true);
      ldv.setUint32(16, 1, true);
      await this.write(l);
    }
    const e = new Uint8Array(22);
    const dv = new DataView(e.buffer);
    dv.setUint32(0, 0x06054b50, true);
    dv.setUint16(8, zip64 ? 0xffff : count, true);
    dv.setUint16(10, zip64 ? 0xffff : count, true);
    dv.setUint32(12, zip64 ? U32_MAX : cdSize, true);
    dv.setUint32(16, zip64 ? U32_MAX : cdStart, true);
    await this.write(e);
    await this.fh.close();
  }

  /** Closes without finishing (leaves a truncated archive). */
  async abort(): Promise<void> { await this.fh.close(); }
}

async function collect(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.byteLength; }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

export interface CheckpointSpec {
  /** Top folder name inside the zip (torch uses the file stem). */
  readonly archive?: string;
  readonly storages: readonly StorageSpec[];
  readonly tensors: readonly TensorSpec[];
  /** Use this pickle instead of the generated state dict. */
  readonly pickle?: Uint8Array;
  readonly pickleOptions?: StateDictPickleOptions;
  /** Write a `byteorder` entry (torch >= 1.13 writes 'little'); null for none. */
  readonly byteorder?: 'little' | 'big' | null;
  readonly zip64?: 'auto' | 'always';
  /** Deflate these storage keys (torch never does). */
  readonly deflate?: readonly string[];
  /** Leave these storage keys out of the archive. */
  readonly omit?: readonly string[];
  /** Called after each storage (for progress). */
  readonly onStorage?: (key: string, bytes: number) => void;
  /** Overwrite an existing file (default true); false refuses. */
  readonly overwrite?: boolean;
}

async function materialise(s: StorageSpec): Promise<{ size: number; data: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array> }> {
  if (s.bytes instanceof Uint8Array) return { size: s.bytes.byteLength, data: s.bytes };
  const produced = await s.bytes();
  if (produced instanceof Uint8Array) return { size: produced.byteLength, data: produced };
  if (s.byteLength === undefined) throw new Error(`storage '${s.key}': chunked bytes need byteLength`);
  return { size: s.byteLength, data: produced };
}

/** Writes a torch.save-format checkpoint; storages are produced and written one at a time. */
export async function writeTorchCheckpoint(path: string, spec: CheckpointSpec): Promise<void> {
  const archive = spec.archive ?? 'archive';
  const z = await ZipWriter.create(path, { zip64: spec.zip64 ?? 'auto', flags: spec.overwrite === false ? 'wx' : 'w' });
  try {
    const pkl = spec.pickle ?? stateDictPickle(spec.tensors, spec.storages, spec.pickleOptions);
    await z.add(`${archive}/data.pkl`, pkl.byteLength, pkl);
    const bo = spec.byteorder === undefined ? 'little' : spec.byteorder;
    if (bo !== null) {
      const b = new TextEncoder().encode(bo);
      await z.add(`${archive}/byteorder`, b.byteLength, b);
    }
    for (const s of spec.storages) {
      if (spec.omit?.includes(s.key)) continue;
      const { size, data } = await materialise(s);
      await z.add(`${archive}/data/${s.key}`, size, data, { deflate: spec.deflate?.includes(s.key) ?? false });
      spec.onStorage?.(s.key, size);
    }
    const v = new TextEncoder().encode('3\n');
    await z.add(`${archive}/version`, v.byteLength, v);
  } catch (e) {
    await z.abort();
    throw e;
  }
  await z.finish();
}

/** A float tensor for `writeStateDict`: float32 values, stored as float32 or float16. */
export interface StateDictTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
  readonly dtype?: 'F32' | 'F16';
}

/**
 * Writes `OrderedDict(name -> tensor)` as `torch.save` does (one contiguous storage per tensor), to
 * `path` with flag 'wx' unless `overwrite`: what `torch.load` returns as a module's state dict.
 */
export async function writeStateDict(path: string, tensors: readonly StateDictTensor[], opts: { archive?: string; overwrite?: boolean } = {}): Promise<void> {
  const storages: StorageSpec[] = tensors.map((t, i) => {
    const n = t.shape.reduce((a, d) => a * d, 1);
    if (t.data.length !== n) throw new Error(`writeStateDict: '${t.name}' has ${t.data.length} values, shape [${t.shape}] needs ${n}`);
    const half = t.dtype === 'F16';
    const bytes = half ? new Uint8Array(Uint16Array.from(t.data, toFloat16Bits).buffer) : new Uint8Array(Float32Array.from(t.data).buffer);
    return { key: String(i), type: half ? 'HalfStorage' : 'FloatStorage', bytes };
  });
  await writeTorchCheckpoint(path, {
    archive: opts.archive, storages, overwrite: opts.overwrite ?? false,
    tensors: tensors.map((t, i) => ({ name: t.name, storage: String(i), size: t.shape })),
  });
}
