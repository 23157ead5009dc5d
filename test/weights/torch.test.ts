import { describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yauzl from 'yauzl';
import { openTorchCheckpoint } from '../../src/weights/torch.js';
import { openSafetensors } from '../../src/weights/safetensors.js';
import { WeightFileError } from '../../src/weights/types.js';
import { CHECKPOINTS, FIXTURES } from '../helpers/fixtures.js';
import {
  PickleWriter, ZipWriter, f32Bytes, f64Bytes, u16Bytes, writeTorchCheckpoint,
  type CheckpointSpec, type StorageSpec, type TensorSpec,
} from '../helpers/torch-writer.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'torch-'));

/** Reads one zip entry through yauzl (an independent zip implementation). */
function extractEntry(zipPath: string, name: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    yauzl.open(zipPath, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) { reject(err ?? new Error('yauzl: no zip')); return; }
      zip.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName !== name) { zip.readEntry(); return; }
        zip.openReadStream(entry, (e2, stream) => {
          if (e2 || !stream) { reject(e2 ?? new Error('yauzl: no stream')); return; }
          const parts: Buffer[] = [];
          stream.on('data', (c: Buffer) => parts.push(c));
          stream.on('end', () => { zip.close(); resolve(Buffer.concat(parts)); });
          stream.on('error', reject);
        });
      });
      zip.on('end', () => reject(new Error(`yauzl: no entry '${name}' in ${zipPath}`)));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}

/** IEEE half → number, written independently of src/weights/dtype.ts (via float32 bit assembly). */
function halfToNumber(h: number): number {
  const sign = h >> 15;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return (sign ? -1 : 1) * Math.pow(2, -14) * (frac / 1024);
  const u = new Uint32Array(1);
  if (exp === 0x1f) u[0] = (sign << 31) | (0xff << 23) | (frac << 13);
  else u[0] = (sign << 31) | ((exp - 15 + 127) << 23) | (frac << 13);
  return new Float32Array(u.buffer)[0]!;
}

const bytesOf = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

async function writeCkpt(spec: CheckpointSpec, file = 'ckpt.pt'): Promise<string> {
  const path = join(tmp(), file);
  await writeTorchCheckpoint(path, spec);
  return path;
}

/** A checkpoint whose data.pkl is `pickle`, with one real float storage '0' of 4 elements. */
async function withPickle(pickle: Uint8Array): Promise<string> {
  return writeCkpt({
    pickle,
    storages: [{ key: '0', type: 'FloatStorage', bytes: f32Bytes([1, 2, 3, 4]) }],
    tensors: [],
  });
}

/** Asserts `p` rejects with a WeightFileError whose message matches every pattern. */
async function rejectsWith(p: Promise<unknown>, ...patterns: RegExp[]): Promise<string> {
  let err: unknown;
  try { await p; } catch (e) { err = e; }
  expect(err, 'expected a rejection').toBeInstanceOf(WeightFileError);
  const msg = (err as Error).message;
  for (const re of patterns) expect(msg).toMatch(re);
  console.log(`  refused as expected: ${msg}`);
  return msg;
}

describe('torch.save reader on the fixture checkpoints', () => {
  it.each(CHECKPOINTS)('%s/pytorch_model.bin equals model.safetensors bit for bit', async (ckpt) => {
    const t0 = performance.now();
    const pt = await openTorchCheckpoint(join(FIXTURES, ckpt, 'pytorch_model.bin'));
    const tOpen = performance.now() - t0;
    const st = await openSafetensors(join(FIXTURES, ckpt, 'model.safetensors'));
    try {
      expect(pt.format).toBe('pytorch');
      expect(pt.archive).toBe('pytorch_model');
      expect([...pt.keys()].sort()).toEqual([...st.keys()].sort());
      let floats = 0;
      let readMs = 0;
      for (const k of pt.keys()) {
        expect(pt.info(k)).toEqual(st.info(k));
        const t1 = performance.now();
        const a = await pt.readFloat32(k);
        readMs += performance.now() - t1;
        const b = await st.readFloat32(k);
        expect(a.shape).toEqual(b.shape);
        expect(bytesOf(a.data).equals(bytesOf(b.data)), `tensor '${k}' differs`).toBe(true);
        const ra = await pt.readRaw(k);
        expect(Buffer.from(ra.bytes).equals(Buffer.from((await st.readRaw(k)).bytes))).toBe(true);
        floats += a.data.length;
      }
      console.log(`${ckpt}: pytorch_model.bin vs model.safetensors: ${pt.keys().length} tensors, ${floats} floats, all bit-identical (open ${tOpen.toFixed(1)} ms, read ${readMs.toFixed(1)} ms)`);
    } finally {
      await pt.close();
      await st.close();
    }
  });

  it.each(CHECKPOINTS)('%s/colbert_linear.pt: F32 [C,H] and [C], bytes as stored', async (ckpt) => {
    const hidden = (JSON.parse(readFileSync(join(FIXTURES, ckpt, 'config.json'), 'utf8')) as { hidden_size: number }).hidden_size;
    const path = join(FIXTURES, ckpt, 'colbert_linear.pt');
    const f = await openTorchCheckpoint(path);
    try {
      expect(f.keys()).toEqual(['weight', 'bias']);
      const w = f.info('weight');
      const b = f.info('bias');
      expect(w.dtype).toBe('F32');
      expect(b.dtype).toBe('F32');
      const c = b.shape[0]!;
      expect(w.shape).toEqual([c, hidden]);
      expect(b.shape).toEqual([c]);
      for (const name of ['weight', 'bias']) {
        const v = f.view(name);
        const stored = await extractEntry(path, v.entry);
        const got = await f.readFloat32(name);
        expect(bytesOf(got.data).equals(stored.subarray(v.storageOffset * 4, v.storageOffset * 4 + got.data.byteLength))).toBe(true);
        expect(got.data.every(Number.isFinite)).toBe(true);
      }
      console.log(`${ckpt}/colbert_linear.pt: weight [${w.shape}] bias [${b.shape}] F32, equal to the storage bytes extracted by yauzl`);
    } finally {
      await f.close();
    }
  });

  it.each(CHECKPOINTS)('%s/sparse_linear.pt: F16 [1,H] and [1], upcast exactly', async (ckpt) => {
    const hidden = (JSON.parse(readFileSync(join(FIXTURES, ckpt, 'config.json'), 'utf8')) as { hidden_size: number }).hidden_size;
    const path = join(FIXTURES, ckpt, 'sparse_linear.pt');
    const f = await openTorchCheckpoint(path);
    try {
      expect(f.info('weight')).toEqual({ name: 'weight', dtype: 'F16', shape: [1, hidden] });
      expect(f.info('bias')).toEqual({ name: 'bias', dtype: 'F16', shape: [1] });
      let checked = 0;
      for (const name of ['weight', 'bias']) {
        const v = f.view(name);
        const stored = await extractEntry(path, v.entry);
        const raw = await f.readRaw(name);
        const n = raw.bytes.byteLength / 2;
        expect(Buffer.from(raw.bytes).equals(stored.subarray(v.storageOffset * 2, v.storageOffset * 2 + n * 2))).toBe(true);
        const got = await f.readFloat32(name);
        for (let i = 0; i < n; i++) {
          const bits = stored.readUInt16LE((v.storageOffset + i) * 2);
          expect(got.data[i]).toBe(halfToNumber(bits));
          checked++;
        }
      }
      const bias = (await f.readFloat32('bias')).data[0]!;
      // The fixture shifts the sparse bias by +0.05 (N(0, 0.02) + 0.05).
      expect(bias).toBeGreaterThan(-0.1);
      expect(bias).toBeLessThan(0.2);
      console.log(`${ckpt}/sparse_linear.pt: ${checked} half values equal to an independent decode of the stored bits (bias ${bias})`);
    } finally {
      await f.close();
    }
  });
});

describe('torch.save reader on written checkpoints', () => {
  it('reads strided views: transpose, storage offset, slices and two tensors sharing one storage', async () => {
    const m = Array.from({ length: 12 }, (_, i) => i + 0.5); // 3x4 row-major, + storage tail below
    const cube = Array.from({ length: 24 }, (_, i) => 100 + i); // 2x3x4
    const storages: StorageSpec[] = [
      { key: '0', type: 'FloatStorage', bytes: f32Bytes([...m, 99, 98]) },
      { key: '1', type: 'FloatStorage', bytes: f32Bytes(cube) },
    ];
    const tensors: TensorSpec[] = [
      { name: 'mat', storage: '0', size: [3, 4] },
      { name: 'matT', storage: '0', size: [4, 3], stride: [1, 4] },
      { name: 'row1', storage: '0', size: [4], offset: 4 },
      { name: 'col2', storage: '0', size: [3], stride: [4], offset: 2 },
      { name: 'sub', storage: '0', size: [2, 2], stride: [4, 1], offset: 5 },
      { name: 'tail', storage: '0', size: [2], offset: 12 },
      { name: 'bcast', storage: '0', size: [2, 3], stride: [0, 1], offset: 1 },
      { name: 'perm', storage: '1', size: [4, 2, 3], stride: [1, 12, 4] }, // cube.permute(2, 0, 1)
      { name: 'scalar', storage: '1', size: [], stride: [], offset: 7 },
      { name: 'empty', storage: '1', size: [0, 5], stride: [5, 1], offset: 24 },
    ];
    const path = await writeCkpt({ storages, tensors });
    const f = await openTorchCheckpoint(path);
    const arr = async (n: string): Promise<number[]> => [...(await f.readFloat32(n)).data];
    const at = (i: number, j: number): number => m[i * 4 + j]!;
    expect(await arr('mat')).toEqual(m);
    expect(await arr('matT')).toEqual([0, 1, 2, 3].flatMap((j) => [0, 1, 2].map((i) => at(i, j))));
    expect(await arr('row1')).toEqual([4.5, 5.5, 6.5, 7.5]);
    expect(await arr('col2')).toEqual([2.5, 6.5, 10.5]);
    expect(await arr('sub')).toEqual([5.5, 6.5, 9.5, 10.5]);
    expect(await arr('tail')).toEqual([99, 98]);
    expect(await arr('bcast')).toEqual([1.5, 2.5, 3.5, 1.5, 2.5, 3.5]);
    const perm: number[] = [];
    for (let k = 0; k < 4; k++) for (let a = 0; a < 2; a++) for (let b = 0; b < 3; b++) perm.push(cube[a * 12 + b * 4 + k]!);
    expect(await arr('perm')).toEqual(perm);
    expect(f.info('perm').shape).toEqual([4, 2, 3]);
    expect(await arr('scalar')).toEqual([107]);
    expect(f.info('scalar').shape).toEqual([]);
    expect(await arr('empty')).toEqual([]);
    expect(f.view('mat').contiguous).toBe(true);
    expect(f.view('matT').contiguous).toBe(false);
    expect(f.view('matT').storage).toBe('data/0');
    expect(f.view('row1')).toMatchObject({ contiguous: true, storageOffset: 4 });
    // Concurrent reads on one handle.
    const all = await Promise.all(f.keys().map((k) => f.readFloat32(k)));
    expect(all.map((t) => t.data.length)).toEqual([12, 12, 4, 3, 4, 2, 6, 24, 1, 0]);
    await f.close();
    console.log('strided views: mat, transposed, offset row, strided column, sub-block, storage tail, stride-0 broadcast, 3-D permute, 0-d, empty: all as computed by hand');
  });

  it('readInto (the direct-to-heap load) reads a byte range of a contiguous view at its storage offset; strided and big-endian views are refused, named', async () => {
    const vals = Array.from({ length: 12 }, (_, i) => i * 1.5 - 4);
    const tensors: TensorSpec[] = [
      { name: 'row1', storage: '0', size: [2, 4], offset: 4 },
      { name: 'matT', storage: '0', size: [4, 3], stride: [1, 4] },
    ];
    const f = await openTorchCheckpoint(await writeCkpt({ storages: [{ key: '0', type: 'FloatStorage', bytes: f32Bytes(vals) }], tensors }));
    const part = new Uint8Array(12);
    await f.readInto('row1', 8, 12, () => part);
    expect([...new Float32Array(part.buffer)]).toEqual(vals.slice(6, 9));
    expect(f.whyNotInPlace('row1')).toBeNull();
    expect(f.whyNotInPlace('matT')).toBe("a strided view of storage 'data/0' (stride [1,4]), gathered on the host");
    await expect(f.readInto('matT', 0, 4, () => part)).rejects.toThrow(/: tensor 'matT' cannot be read in place: a strided view/);
    await expect(f.readInto('row1', 28, 8, () => part)).rejects.toThrow(/tensor 'row1': bytes \[28, 36\) are outside its 32 bytes/);
    await f.close();
    const be = Buffer.alloc(vals.length * 4);
    vals.forEach((v, i) => be.writeFloatBE(v, i * 4));
    const fb = await openTorchCheckpoint(await writeCkpt({ storages: [{ key: '0', type: 'FloatStorage', bytes: new Uint8Array(be) }], tensors, byteorder: 'big' }));
    expect(fb.whyNotInPlace('row1')).toBe('a big-endian archive, byte-swapped on the host');
    await fb.close();
  });

  it('reads BF16, F64 and F16 storages with known values; integer storages are raw only', async () => {
    const bf16Bits = [0x3f80, 0xc000, 0x3f00, 0x4049, 0x7f80, 0xff80, 0x0001, 0x8000];
    const bf16Want = [1, -2, 0.5, 3.140625, Infinity, -Infinity, 2 ** -133, -0];
    const f64 = [Math.PI, 1e-300, -1.5, 1e39, 0.1, -0];
    const f16Bits = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555, 0x8400, 0xfc00];
    const f16Want = [1, -2, 65504, 2 ** -24, 0.333251953125, -(2 ** -14), -Infinity];
    const i64 = new BigInt64Array([1n, -2n, 3n ** 30n]);
    const path = await writeCkpt({
      archive: 'weird-name_123',
      storages: [
        { key: 'bf', type: 'BFloat16Storage', bytes: u16Bytes(bf16Bits) },
        { key: 'f64', type: 'DoubleStorage', bytes: f64Bytes(f64) },
        { key: 'h', type: 'HalfStorage', bytes: u16Bytes(f16Bits) },
        { key: 'i', type: 'LongStorage', bytes: new Uint8Array(i64.buffer) },
      ],
      tensors: [
        { name: 'bf', storage: 'bf', size: [2, 4] },
        { name: 'd', storage: 'f64', size: [6] },
        { name: 'dT', storage: 'f64', size: [3, 2], stride: [1, 3] },
        { name: 'h', storage: 'h', size: [7] },
        { name: 'ids', storage: 'i', size: [3] },
      ],
    });
    const f = await openTorchCheckpoint(path);
    expect(f.archive).toBe('weird-name_123');
    expect(f.info('bf')).toEqual({ name: 'bf', dtype: 'BF16', shape: [2, 4] });
    expect([...(await f.readFloat32('bf')).data]).toEqual(bf16Want);
    expect(f.info('d').dtype).toBe('F64');
    expect(Buffer.from((await f.readRaw('d')).bytes).equals(Buffer.from(f64Bytes(f64)))).toBe(true);
    expect([...(await f.readFloat32('d')).data]).toEqual(f64.map(Math.fround));
    expect([...(await f.readFloat32('dT')).data]).toEqual([f64[0], f64[3], f64[1], f64[4], f64[2], f64[5]].map((x) => Math.fround(x!)));
    expect([...(await f.readFloat32('h')).data]).toEqual(f16Want);
    expect(f16Bits.map(halfToNumber)).toEqual(f16Want);
    const ids = await f.readRaw('ids');
    expect(ids.dtype).toBe('I64');
    expect([...new BigInt64Array(ids.bytes.buffer, ids.bytes.byteOffset, 3)]).toEqual([...i64]);
    await rejectsWith(f.readFloat32('ids'), /tensor 'ids'/, /I64/, /ckpt\.pt/);
    await f.close();
    console.log('BF16 (incl. inf, subnormal, -0), F64 (rounded once to F32, transposed view too), F16 and I64 storages read as expected');
  });

  it('reads torch variants: parameters, _metadata BUILD, {"state_dict": ...} wrapper, zip64 records, big-endian storages', async () => {
    const vals = [0.25, -1, 3, 7.5, 0.125, -8];
    const storages: StorageSpec[] = [{ key: '0', type: 'FloatStorage', bytes: f32Bytes(vals) }];
    const tensors: TensorSpec[] = [
      { name: 'layer.weight', storage: '0', size: [2, 3] },
      { name: 'layer.bias', storage: '0', size: [3], offset: 3 },
    ];
    const variants: Array<[string, Partial<CheckpointSpec>]> = [
      ['parameters + metadata', { pickleOptions: { parameters: true, metadata: true } }],
      ['nested state_dict', { pickleOptions: { nestUnder: ['state_dict'] } }],
      ['zip64 always, no byteorder', { zip64: 'always', byteorder: null }],
    ];
    for (const [label, extra] of variants) {
      const path = await writeCkpt({ storages, tensors, ...extra });
      const f = await openTorchCheckpoint(path);
      expect(f.keys(), label).toEqual(['layer.weight', 'layer.bias']);
      expect([...(await f.readFloat32('layer.weight')).data], label).toEqual(vals);
      expect([...(await f.readFloat32('layer.bias')).data], label).toEqual(vals.slice(3));
      await f.close();
      console.log(`variant '${label}': read correctly`);
    }
    // Nested dicts without a wrapper key are flattened with '.'.
    const nested = await writeCkpt({ storages, tensors, pickleOptions: { nestUnder: ['encoder', 'block'] } });
    const fn = await openTorchCheckpoint(nested);
    expect(fn.keys()).toEqual(['encoder.block.layer.weight', 'encoder.block.layer.bias']);
    await fn.close();
    // byteorder 'big': storages are big-endian, values come out the same.
    const be = Buffer.alloc(vals.length * 4);
    vals.forEach((v, i) => be.writeFloatBE(v, i * 4));
    const bePath = await writeCkpt({ storages: [{ key: '0', type: 'FloatStorage', bytes: new Uint8Array(be) }], tensors, byteorder: 'big' });
    const fb = await openTorchCheckpoint(bePath);
    expect(fb.byteorder).toBe('big');
    expect([...(await fb.readFloat32('layer.weight')).data]).toEqual(vals);
    expect([...(await fb.readFloat32('layer.bias')).data]).toEqual(vals.slice(3));
    await fb.close();
    console.log("nested dict flattened to 'encoder.block.layer.weight'; big-endian storages byte-swapped");
  });

  it('reads a protocol-4 style pickle (FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE, LONG1, dict)', async () => {
    // Args tuple built with MARK ... TUPLE (6 items): storage, offset, size, stride, requires_grad, hooks.
    const q = new PickleWriter().proto(4);
    q.raw([0x95, 0, 0, 0, 0, 0, 0, 0, 0]);
    q.emptyDict().memoize().mark();
    q.str('w').memoize();
    q.stackGlobal('torch._utils', '_rebuild_tensor_v2').memoize();
    q.mark();
    q.mark().str('storage').stackGlobal('torch', 'FloatStorage').str('0').str('cpu').int(4).tuple().binpersid();
    q.int(0).int(2).int(2).tupleN(2).int(2).int(1).tupleN(2).bool(false);
    q.stackGlobal('collections', 'OrderedDict').tupleN(0).reduce();
    q.tuple().reduce();
    q.str('step').int(2 ** 40); // a non-tensor entry (LONG1) is skipped
    q.setitems().stop();
    const path = await withPickle(q.bytes());
    const f = await openTorchCheckpoint(path);
    expect(f.keys()).toEqual(['w']);
    expect([...(await f.readFloat32('w')).data]).toEqual([1, 2, 3, 4]);
    await f.close();
    console.log('protocol-4 pickle with STACK_GLOBAL/MEMOIZE/FRAME/LONG1 read');
  });

  it('reads _rebuild_tensor_v3 on an UntypedStorage (dtype from torch.bfloat16) and legacy _rebuild_tensor', async () => {
    const q = new PickleWriter().proto(2).global('collections', 'OrderedDict').tupleN(0).reduce().mark();
    q.str('a').global('torch._utils', '_rebuild_tensor_v3').mark();
    q.mark().str('storage').global('torch', 'UntypedStorage').str('0').str('cpu').int(8).tuple().binpersid();
    q.int(1).int(2).tupleN(1).int(1).tupleN(1).bool(false).global('collections', 'OrderedDict').tupleN(0).reduce();
    q.global('torch', 'bfloat16').tuple().reduce();
    q.str('b').global('torch._utils', '_rebuild_tensor').mark();
    q.mark().str('storage').global('torch', 'FloatStorage').str('1').str('cpu').int(3).tuple().binpersid();
    q.int(1).int(2).tupleN(1).int(1).tupleN(1).tuple().reduce();
    q.setitems().stop();
    const path = await writeCkpt({
      pickle: q.bytes(),
      storages: [
        { key: '0', type: 'ByteStorage', bytes: u16Bytes([0x3f80, 0x4000, 0x4040, 0x4080]) },
        { key: '1', type: 'FloatStorage', bytes: f32Bytes([5, 6, 7]) },
      ],
      tensors: [],
    });
    const f = await openTorchCheckpoint(path);
    expect(f.info('a')).toEqual({ name: 'a', dtype: 'BF16', shape: [2] });
    expect([...(await f.readFloat32('a')).data]).toEqual([2, 3]);
    expect(f.view('a').storageNumel).toBe(4);
    expect([...(await f.readFloat32('b')).data]).toEqual([6, 7]);
    await f.close();
    console.log('_rebuild_tensor_v3 (UntypedStorage + torch.bfloat16, offset 1) and _rebuild_tensor read');
  });

  it("refuses a pickle calling 'posix system' and runs nothing", async () => {
    const dir = tmp();
    const marker = join(dir, 'pwned');
    const evil = new PickleWriter().proto(2).global('posix', 'system').str(`touch ${marker}`).tupleN(1).reduce().stop().bytes();
    const path = await withPickle(evil);
    await rejectsWith(openTorchCheckpoint(path), /refuses global 'posix system'/, /ckpt\.pt/);
    expect(existsSync(marker)).toBe(false);
    // Also when hidden inside a valid-looking state dict, and via STACK_GLOBAL.
    const hidden = new PickleWriter().proto(2).global('collections', 'OrderedDict').tupleN(0).reduce()
      .str('x').stackGlobal('builtins', 'eval').str('1').tupleN(1).reduce().setitem().stop().bytes();
    await rejectsWith(openTorchCheckpoint(await withPickle(hidden)), /refuses global 'builtins eval'/);
    const os = new PickleWriter().proto(2).global('os', 'system').stop().bytes();
    await rejectsWith(openTorchCheckpoint(await withPickle(os)), /refuses global 'os system'/);
    // An allowed global that is not callable cannot be REDUCEd.
    const notCallable = new PickleWriter().proto(2).global('torch', 'FloatStorage').tupleN(0).reduce().stop().bytes();
    await rejectsWith(openTorchCheckpoint(await withPickle(notCallable)), /not callable/);
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses unknown and unsupported opcodes naming the byte', async () => {
    const inst = new PickleWriter().proto(2).raw(new TextEncoder().encode('iposix\nsystem\n')).stop().bytes();
    await rejectsWith(openTorchCheckpoint(await withPickle(inst)), /opcode 0x69 'i' \(INST\)/, /data\.pkl/);
    const junk = new PickleWriter().proto(2).raw([0xff]).stop().bytes();
    await rejectsWith(openTorchCheckpoint(await withPickle(junk)), /opcode 0xff \(unknown\)/, /at byte 2/);
  });

  it('guards against hostile pickle structure (lengths, memo, stack, cycles, no STOP)', async () => {
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ['huge BINUNICODE length', new PickleWriter().proto(2).raw([0x58, 0xff, 0xff, 0xff, 0xff, 0x41]).stop().bytes(), /BINUNICODE needs 4294967295 bytes/],
      ['huge BINUNICODE8 length', new PickleWriter().proto(4).raw([0x8d, 0, 0, 0, 0, 0, 0, 0, 0x7f]).stop().bytes(), /exceeds the pickle size/],
      ['missing memo', new PickleWriter().proto(2).get(7).stop().bytes(), /memo entry 7 was never stored/],
      ['stack underflow', new PickleWriter().proto(2).reduce().stop().bytes(), /stack underflow/],
      ['underflow past MARK', new PickleWriter().proto(2).emptyDict().mark().int(1).setitem().stop().bytes(), /stack underflow/],
      ['no STOP', new PickleWriter().proto(2).emptyDict().bytes(), /without STOP/],
      ['empty pickle', new Uint8Array(0), /without STOP/],
      ['self-containing dict', new PickleWriter().proto(2).emptyDict().put().str('a').get(0).setitem().stop().bytes(), /contains itself/],
      ['bad persistent id', new PickleWriter().proto(2).str('boom').binpersid().stop().bytes(), /persistent id/],
      ['root is a list', new PickleWriter().proto(2).emptyList().stop().bytes(), /not a state dict/],
    ];
    for (const [label, pkl, re] of cases) {
      console.log(`hostile pickle: ${label}`);
      await rejectsWith(openTorchCheckpoint(await withPickle(pkl)), re);
    }
  });

  it('refuses truncated archives, non-zips and missing entries with the fault named', async () => {
    const storages: StorageSpec[] = [{ key: '0', type: 'FloatStorage', bytes: f32Bytes(Array.from({ length: 1000 }, (_, i) => i)) }];
    const tensors: TensorSpec[] = [{ name: 'x', storage: '0', size: [1000] }];
    const good = await writeCkpt({ storages, tensors });
    const whole = readFileSync(good);
    const dir = tmp();

    const half = join(dir, 'half.pt');
    writeFileSync(half, whole.subarray(0, whole.length >> 1));
    await rejectsWith(openTorchCheckpoint(half), /half\.pt/, /truncated/);

    const cutTail = join(dir, 'cut-tail.pt');
    writeFileSync(cutTail, whole.subarray(0, whole.length - 5));
    await rejectsWith(openTorchCheckpoint(cutTail), /truncated/);

    // Storage bytes cut out of the middle: the directory survives but points past the end.
    const cutMiddle = join(dir, 'cut-middle.pt');
    writeFileSync(cutMiddle, Buffer.concat([whole.subarray(0, 600), whole.subarray(2600)]));
    await rejectsWith(openTorchCheckpoint(cutMiddle), /cut-middle\.pt/, /beyond the end|truncated|corrupt/);

    const notZip = join(dir, 'not-zip.pt');
    writeFileSync(notZip, Buffer.from('this is not a zip archive, just text '.repeat(10)));
    await rejectsWith(openTorchCheckpoint(notZip), /not a zip archive/);

    const legacy = join(dir, 'legacy.pt');
    writeFileSync(legacy, Buffer.concat([Buffer.from([0x80, 0x02, 0x8a, 0x0a]), Buffer.alloc(100)]));
    await rejectsWith(openTorchCheckpoint(legacy), /legacy/);

    const st = join(dir, 'model.safetensors');
    copyFileSync(join(FIXTURES, 'tiny-m3', 'model.safetensors'), st);
    await rejectsWith(openTorchCheckpoint(st), /not a zip archive/);

    await rejectsWith(openTorchCheckpoint(join(dir, 'does-not-exist.pt')), /cannot open/);

    // A zip without data.pkl (a valid zip: the writer's version entry only).
    const noPkl = join(dir, 'no-pkl.zip');
    const z = await ZipWriter.create(noPkl);
    await z.add('archive/version', 2, new TextEncoder().encode('3\n'));
    await z.finish();
    await rejectsWith(openTorchCheckpoint(noPkl), /no '<archive>\/data\.pkl' entry/);

    // Missing storage entry.
    await rejectsWith(openTorchCheckpoint(await writeCkpt({ storages, tensors, omit: ['0'] })), /tensor 'x'/, /storage entry 'archive\/data\/0' is missing/);

    // Compressed storage entry.
    await rejectsWith(openTorchCheckpoint(await writeCkpt({ storages, tensors, deflate: ['0'] })), /tensor 'x'/, /'archive\/data\/0' is compressed/);
    console.log(`truncated/corrupt archive checks done on a ${whole.length}-byte checkpoint`);
  });

  it('refuses a storage shorter than the tensor view needs, naming tensor and storage', async () => {
    const four = f32Bytes([1, 2, 3, 4]);
    await rejectsWith(
      openTorchCheckpoint(await writeCkpt({ storages: [{ key: '3', type: 'FloatStorage', bytes: four }], tensors: [{ name: 'x', storage: '3', size: [2, 3] }] })),
      /storage 'data\/3' has 4 elements, tensor 'x' needs 6/,
    );
    // Offset pushes the view past the end.
    await rejectsWith(
      openTorchCheckpoint(await writeCkpt({ storages: [{ key: '3', type: 'FloatStorage', bytes: four }], tensors: [{ name: 'y', storage: '3', size: [2], offset: 3 }] })),
      /storage 'data\/3' has 4 elements, tensor 'y' needs 5/,
    );
    // Strided view past the end.
    await rejectsWith(
      openTorchCheckpoint(await writeCkpt({ storages: [{ key: '3', type: 'FloatStorage', bytes: four }], tensors: [{ name: 'z', storage: '3', size: [2, 2], stride: [1, 3] }] })),
      /storage 'data\/3' has 4 elements, tensor 'z' needs 5/,
    );
    // The pickle declares more elements than the entry holds.
    await rejectsWith(
      openTorchCheckpoint(await writeCkpt({ storages: [{ key: '3', type: 'FloatStorage', bytes: four, numel: 100 }], tensors: [{ name: 'x', storage: '3', size: [4] }] })),
      /tensor 'x'/, /declared as 100 F32 \(400 bytes\) but its entry 'archive\/data\/3' holds 16 bytes/,
    );
  });

  it('names the file and tensor for absent tensors and reads after close', async () => {
    const path = await writeCkpt({ storages: [{ key: '0', type: 'FloatStorage', bytes: f32Bytes([1]) }], tensors: [{ name: 'a', storage: '0', size: [1] }] });
    const f = await openTorchCheckpoint(path);
    expect(f.has('a')).toBe(true);
    expect(f.has('b')).toBe(false);
    expect(() => f.info('b')).toThrow(/ckpt\.pt: no tensor 'b'/);
    await rejectsWith(f.readFloat32('b'), /ckpt\.pt/, /no tensor 'b'/);
    await f.close();
    await rejectsWith(f.readRaw('a'), /after close/);
    expect(statSync(path).size).toBeGreaterThan(0);
  });
});
