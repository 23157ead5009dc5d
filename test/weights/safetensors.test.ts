import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSafetensors, writeSafetensors } from '../../src/weights/safetensors.js';
import { FIXTURES, CHECKPOINTS } from '../helpers/fixtures.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'st-'));

/** Builds a safetensors file by hand from a header object and a data section. */
function handMade(header: unknown, data: Uint8Array, lenOverride?: bigint): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lenOverride ?? BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

describe('safetensors reader', () => {
  it.each(CHECKPOINTS)('reads every tensor of %s/model.safetensors with the header shapes', async (ckpt) => {
    const f = await openSafetensors(join(FIXTURES, ckpt, 'model.safetensors'));
    const config = JSON.parse(readFileSync(join(FIXTURES, ckpt, 'config.json'), 'utf8'));
    const w = await f.readFloat32('embeddings.word_embeddings.weight');
    expect(w.shape).toEqual([config.vocab_size, config.hidden_size]);
    // <pad> row is zero, others are not (N(0, 0.02) draws).
    expect(w.data.subarray(config.hidden_size, 2 * config.hidden_size).every((v) => v === 0)).toBe(true);
    expect(w.data.subarray(0, config.hidden_size).some((v) => v !== 0)).toBe(true);
    for (const k of f.keys()) {
      const t = await f.readFloat32(k);
      expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
      expect(t.data.every(Number.isFinite)).toBe(true);
    }
    expect(f.metadata.format).toBe('pt');
    await f.close();
  });

  it('round-trips F32, F16, BF16, F64, I64 through the writer, bit for bit', async () => {
    const dir = tmp();
    const path = join(dir, 'rt.safetensors');
    const f32 = new Float32Array([1.5, -2.25, 3.0e-8, 65504, -0]);
    const f16bits = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7bff, 0x8000, 0x3555]); // 1, -2, 2^-24, 65504, -0, 0.333...
    const bf16bits = new Uint16Array([0x3f80, 0xc040, 0x0001]); // 1, -3, tiny subnormal
    const f64 = new Float64Array([Math.PI, -1e-300]);
    const i64 = new BigInt64Array([1n, -2n, 9007199254740993n]);
    const tensors = [
      { name: 'b.f32', dtype: 'F32' as const, shape: [5], bytes: () => new Uint8Array(f32.buffer) },
      { name: 'a.f16', dtype: 'F16' as const, shape: [2, 3], bytes: () => new Uint8Array(f16bits.buffer) },
      { name: 'c.bf16', dtype: 'BF16' as const, shape: [3], bytes: () => new Uint8Array(bf16bits.buffer) },
      { name: 'd.f64', dtype: 'F64' as const, shape: [2, 1], bytes: () => new Uint8Array(f64.buffer) },
      { name: 'e.i64', dtype: 'I64' as const, shape: [3], bytes: () => new Uint8Array(i64.buffer) },
      { name: 'z.empty', dtype: 'F32' as const, shape: [0, 4], bytes: () => new Uint8Array(0) },
    ];
    await writeSafetensors(path, tensors, { metadata: { format: 'pt' } });
    const buf = readFileSync(path);
    expect((8 + Number(buf.readBigUInt64LE(0))) % 8).toBe(0); // data starts 8-aligned
    const f = await openSafetensors(path);
    expect(f.keys().sort()).toEqual(tensors.map((t) => t.name).sort());
    for (const t of tensors) {
      const raw = await f.readRaw(t.name);
      expect(raw.dtype).toBe(t.dtype);
      expect(raw.shape).toEqual(t.shape);
      expect(Buffer.from(raw.bytes).equals(Buffer.from(t.bytes()))).toBe(true);
    }
    expect(Array.from((await f.readFloat32('b.f32')).data)).toEqual(Array.from(f32));
    expect(Array.from((await f.readFloat32('a.f16')).data)).toEqual([1, -2, 2 ** -24, 65504, -0, 0.333251953125]);
    expect(Array.from((await f.readFloat32('c.bf16')).data)).toEqual([1, -3, Math.fround(2 ** -133)]);
    expect(Array.from((await f.readFloat32('d.f64')).data)).toEqual([Math.fround(Math.PI), Math.fround(-1e-300)]);
    await expect(f.readFloat32('e.i64')).rejects.toThrow(/e\.i64.*I64/);
    await expect(f.readRaw('nope')).rejects.toThrow(/rt\.safetensors.*no tensor named 'nope'/);
    await f.close();
  });

  it('never overwrites an existing file unless asked', async () => {
    const dir = tmp();
    const path = join(dir, 'x.safetensors');
    writeFileSync(path, 'precious');
    const t = [{ name: 'a', dtype: 'F32' as const, shape: [1], bytes: () => new Uint8Array(4) }];
    await expect(writeSafetensors(path, t)).rejects.toThrow(/EEXIST/);
    expect(readFileSync(path, 'utf8')).toBe('precious');
    await writeSafetensors(path, t, { overwrite: true });
    expect(existsSync(path)).toBe(true);
    const f = await openSafetensors(path);
    expect(f.keys()).toEqual(['a']);
    await f.close();
  });

  const bad: Array<[string, Buffer, RegExp]> = [
    ['too short', Buffer.alloc(4), /too short/],
    ['huge header length', handMade({}, new Uint8Array(0), 1n << 40n), /header length .* larger/],
    ['header past the end', handMade({}, new Uint8Array(0), 1000n), /runs past the end/],
    ['not JSON', Buffer.concat([Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{x]')]), /not valid JSON/],
    ['unknown dtype', handMade({ w: { dtype: 'F8_E9', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /'w'.*unknown dtype "F8_E9"/],
    ['shape × itemsize != span', handMade({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, new Uint8Array(12)), /'w'.*16 bytes, but data_offsets span 12/],
    ['negative dim', handMade({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /'w'.*shape/],
    ['truncated data', handMade({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(10)), /'w'.*past the end.*truncated/],
    ['overlap', handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)), /'b' overlaps/],
    ['gap', handMade({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), /gap of 4 bytes before tensor 'a'/],
    ['trailing bytes', handMade({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(9)), /5 bytes after the last tensor/],
    ['bad metadata', handMade({ __metadata__: { a: 1 } }, new Uint8Array(0)), /__metadata__/],
  ];
  it.each(bad)('rejects a file with %s, naming the file and fault', async (_what, bytes, msg) => {
    const path = join(tmp(), 'bad.safetensors');
    writeFileSync(path, bytes);
    const err = await openSafetensors(path).then(() => null, (e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toContain(path);
    expect(err!.message).toMatch(msg);
  });

  it('readInto reads a byte range of a tensor (what the direct-to-heap load uses) and refuses one outside it', async () => {
    const f = await openSafetensors(join(FIXTURES, 'tiny-m3', 'model.safetensors'));
    const name = 'encoder.layer.1.attention.self.key.weight';
    const whole = (await f.readRaw(name)).bytes;
    const part = new Uint8Array(100);
    await f.readInto(name, 37, 100, () => part);
    expect(Array.from(part)).toEqual(Array.from(whole.subarray(37, 137)));
    await expect(f.readInto(name, whole.length - 4, 8, () => new Uint8Array(8))).rejects.toThrow(/tensor 'encoder.layer.1.attention.self.key.weight': bytes \[\d+, \d+\) are outside its \d+ bytes/);
    await expect(f.readInto('nope', 0, 1, () => new Uint8Array(1))).rejects.toThrow(/no tensor named 'nope'/);
    await f.close();
  });

  it('names a missing file', async () => {
    await expect(openSafetensors('/nonexistent/model.safetensors')).rejects.toThrow(/\/nonexistent\/model\.safetensors.*ENOENT/);
  });
});
