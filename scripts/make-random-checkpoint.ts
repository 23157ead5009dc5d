/**
 * Writes a full-size BGE-M3 snapshot folder with random weights, for exercising the loaders on the
 * real shapes (hidden 1024, 24 layers, 16 heads, intermediate 4096, vocab 250002, 8194 positions)
 * without downloading 2.3 GB.
 *
 *   npx tsx scripts/make-random-checkpoint.ts --out DIR [--format bin|safetensors|both] [--layers N]
 *                                             [--seed S] [--force] [--verify]
 *
 * Writes config.json (from the tiny-m3 fixture with the sizes above; num_hidden_layers = --layers),
 * pytorch_model.bin (torch.save zip format) and/or model.safetensors with every encoder tensor listed
 * in test/fixtures/README.md, colbert_linear.pt ([1024,1024] + [1024], float32), sparse_linear.pt
 * ([1,1024] + [1], float16) and the tokenizer files of tiny-m3. Values follow the fixtures'
 * recipe (Linear and embeddings N(0, 0.02), LayerNorm weights 1 + N(0, 0.1), biases N(0, 0.02), pad rows
 * zero, sparse bias + 0.05) from a seeded generator, so both formats hold the same values.
 * Tensors are generated and written one at a time (pytorch_model.bin in 16 MB chunks).
 * --verify re-opens what was written and compares every tensor with a fresh generation.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeTorchCheckpoint, type StorageClass, type StorageSpec, type TensorSpec } from '../test/helpers/torch-writer.js';
import { openSafetensors, writeSafetensors } from '../src/weights/safetensors.js';
import { openTorchCheckpoint } from '../src/weights/torch.js';
import type { TensorSource } from '../src/weights/types.js';
import { parseConfig } from '../src/config.js';
import { expectedShapes } from '../src/model/params.js';
import { locateTensor, partFiles } from '../src/weights/checkpoint-files.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TEMPLATE = join(ROOT, 'test', 'fixtures', 'tiny-m3');
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'sentencepiece.bpe.model'];
const CHUNK_ELEMS = 4 << 20; // 16 MB of float32

const ENC = partFiles('encoder');
const COLBERT = partFiles('colbert_linear');
const SPARSE = partFiles('sparse_linear');
const SIZES = { hidden: 1024, heads: 16, intermediate: 4096, vocab: 250002, positions: 8194, layers: 24 };

type Init = 'normal' | 'ln' | 'bias' | 'sparse_bias';
interface Gen {
  readonly name: string;
  readonly shape: number[];
  readonly init: Init;
  /** Row (of the first axis) forced to zero: the padding row of an embedding. */
  readonly zeroRow?: number;
  readonly half?: boolean;
}

/** Every encoder tensor, named and shaped by the model's own `expectedShapes` (plus the unused pooler). */
function encoderTensors(config: Record<string, unknown>): Gen[] {
  const c = parseConfig(config);
  const t: Gen[] = [...expectedShapes(c, c.hidden_size)]
    .filter(([name]) => locateTensor(name).part === 'encoder')
    .map(([name, shape]) => ({
      name, shape,
      init: name.endsWith('.bias') ? 'bias' : name.endsWith('LayerNorm.weight') ? 'ln' : 'normal',
      // the padding row of the word and position tables is zero, as in the checkpoints
      ...(/^embeddings\.(word|position)_embeddings\./.test(name) ? { zeroRow: c.pad_token_id } : {}),
    }));
  const H = c.hidden_size;
  t.push({ name: 'pooler.dense.weight', shape: [H, H], init: 'normal' }, { name: 'pooler.dense.bias', shape: [H], init: 'bias' });
  return t;
}

// --- Deterministic generator: xoshiro128** seeded per tensor, Box-Muller normals. ---

function hash32(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

class Rng {
  private a: number; private b: number; private c: number; private d: number;
  private spare: number | null = null;
  constructor(seed: number) {
    // splitmix32 to fill the state
    const next = (): number => {
      seed = (seed + 0x9e3779b9) | 0;
      let z = seed;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next(); this.b = next(); this.c = next(); this.d = next() | 1;
  }
  u32(): number {
    const r = Math.imul(((Math.imul(this.b, 5) << 7) | (Math.imul(this.b, 5) >>> 25)), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a; this.d ^= this.b; this.b ^= this.c; this.a ^= this.d; this.c ^= t;
    this.d = (this.d << 11) | (this.d >>> 21);
    return r;
  }
  /** Uniform in (0, 1). */
  uniform(): number { return (this.u32() + 0.5) / 4294967296; }
  normal(): number {
    if (this.spare !== null) { const s = this.spare; this.spare = null; return s; }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const th = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(th);
    return r * Math.cos(th);
  }
}

/** Values of one tensor, in chunks of at most `chunk` elements (the same sequence whatever the chunk size). */
function* values(g: Gen, seed: number, chunk: number): Generator<Float32Array> {
  const rng = new Rng(hash32(g.name, seed));
  const n = g.shape.reduce((a, b) => a * b, 1);
  const row = g.shape.length > 1 ? g.shape.slice(1).reduce((a, b) => a * b, 1) : n;
  const zeroFrom = g.zeroRow === undefined ? -1 : g.zeroRow * row;
  const zeroTo = zeroFrom < 0 ? -1 : zeroFrom + row;
  for (let start = 0; start < n; start += chunk) {
    const out = new Float32Array(Math.min(chunk, n - start));
    for (let i = 0; i < out.length; i++) {
      const z = rng.normal(); // drawn even for zero rows, so chunking never shifts the sequence
      const idx = start + i;
      if (idx >= zeroFrom && idx < zeroTo) { out[i] = 0; continue; }
      switch (g.init) {
        case 'normal': case 'bias': out[i] = 0.02 * z; break;
        case 'ln': out[i] = 1 + 0.1 * z; break;
        case 'sparse_bias': out[i] = 0.02 * z + 0.05; break;
      }
    }
    yield out;
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** float32 → IEEE half bits, round to nearest even. */
function toHalf(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is still right
  return sign | h;
}

function* bytesOf(g: Gen, seed: number, chunk = CHUNK_ELEMS): Generator<Uint8Array> {
  for (const v of values(g, seed, chunk)) {
    if (!g.half) { yield new Uint8Array(v.buffer, v.byteOffset, v.byteLength); continue; }
    const h = new Uint16Array(v.length);
    for (let i = 0; i < v.length; i++) h[i] = toHalf(v[i]!);
    yield new Uint8Array(h.buffer);
  }
}

function wholeBytes(g: Gen, seed: number): Uint8Array {
  const n = g.shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(n * (g.half ? 2 : 4));
  let o = 0;
  for (const c of bytesOf(g, seed)) { out.set(c, o); o += c.byteLength; }
  return out;
}

const elemSize = (g: Gen): number => (g.half ? 2 : 4);
const byteLength = (g: Gen): number => g.shape.reduce((a, b) => a * b, 1) * elemSize(g);

async function writeBin(path: string, archive: string, gens: Gen[], seed: number, overwrite: boolean, log: (s: string) => void): Promise<void> {
  const storages: StorageSpec[] = [];
  const tensors: TensorSpec[] = [];
  gens.forEach((g, i) => {
    const type: StorageClass = g.half ? 'HalfStorage' : 'FloatStorage';
    storages.push({ key: String(i), type, byteLength: byteLength(g), bytes: () => bytesOf(g, seed) });
    tensors.push({ name: g.name, storage: String(i), size: g.shape });
  });
  await writeTorchCheckpoint(path, {
    archive, storages, tensors, overwrite,
    onStorage: (key, bytes) => { if (bytes >= 64 << 20) log(`  ${gens[Number(key)]!.name}: ${(bytes / 2 ** 20).toFixed(0)} MB`); },
  });
}

async function verify(src: TensorSource, gens: Gen[], seed: number): Promise<void> {
  const want = gens.map((g) => g.name);
  const got = src.keys();
  if (JSON.stringify(got.slice().sort()) !== JSON.stringify(want.slice().sort())) {
    throw new Error(`${src.path}: keys differ from the generated list`);
  }
  for (const g of gens) {
    const raw = await src.readRaw(g.name);
    if (JSON.stringify(raw.shape) !== JSON.stringify(g.shape) || raw.dtype !== (g.half ? 'F16' : 'F32')) {
      throw new Error(`${src.path}: '${g.name}' is ${raw.dtype} [${raw.shape}], expected [${g.shape}]`);
    }
    let o = 0;
    for (const c of bytesOf(g, seed)) {
      if (!Buffer.from(raw.bytes.buffer, raw.bytes.byteOffset + o, c.byteLength).equals(Buffer.from(c.buffer, c.byteOffset, c.byteLength))) {
        throw new Error(`${src.path}: '${g.name}' differs from the generator`);
      }
      o += c.byteLength;
    }
  }
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      out: { type: 'string' },
      format: { type: 'string', default: 'bin' },
      layers: { type: 'string', default: String(SIZES.layers) },
      seed: { type: 'string', default: '0' },
      force: { type: 'boolean', default: false },
      verify: { type: 'boolean', default: false },
    },
  });
  if (!args.out) throw new Error('usage: make-random-checkpoint --out DIR [--format bin|safetensors|both] [--layers N] [--seed S] [--force] [--verify]');
  const format = args.format;
  if (format !== 'bin' && format !== 'safetensors' && format !== 'both') throw new Error(`--format must be bin, safetensors or both, not '${format}'`);
  const layers = Number(args.layers);
  if (!Number.isInteger(layers) || layers < 1 || layers > 64) throw new Error(`--layers must be an integer in 1..64, not '${args.layers}'`);
  const seed = Number(args.seed) | 0;
  const out = args.out;
  const overwrite = args.force;
  mkdirSync(out, { recursive: true });
  const log = (s: string): void => console.log(s);
  const t0 = performance.now();

  const config = JSON.parse(readFileSync(join(TEMPLATE, 'config.json'), 'utf8')) as Record<string, unknown>;
  Object.assign(config, {
    hidden_size: SIZES.hidden, num_hidden_layers: layers, num_attention_heads: SIZES.heads,
    intermediate_size: SIZES.intermediate, vocab_size: SIZES.vocab, max_position_embeddings: SIZES.positions,
  });
  const put = (name: string, write: () => void): void => {
    const p = join(out, name);
    if (existsSync(p) && !overwrite) throw new Error(`${p} exists (use --force to overwrite)`);
    write();
  };
  put('config.json', () => writeFileSync(join(out, 'config.json'), `${JSON.stringify(config, null, 2)}\n`));
  for (const f of TOKENIZER_FILES) {
    put(f, () => { copyFileSync(join(TEMPLATE, f), join(out, f)); chmodSync(join(out, f), 0o644); }); // fixtures are read-only
  }

  const encoder = encoderTensors(config);
  const colbert: Gen[] = [
    { name: 'weight', shape: [SIZES.hidden, SIZES.hidden], init: 'normal' },
    { name: 'bias', shape: [SIZES.hidden], init: 'bias' },
  ];
  const sparse: Gen[] = [
    { name: 'weight', shape: [1, SIZES.hidden], init: 'normal', half: true },
    { name: 'bias', shape: [1], init: 'sparse_bias', half: true },
  ];
  // Head tensors get their own seeds (their names collide with nothing in the encoder, but 'weight'/'bias' do with each other).
  const colbertSeed = seed ^ 0x636f6c62;
  const sparseSeed = seed ^ 0x73706172;

  const written: string[] = [];
  if (format === 'bin' || format === 'both') {
    log(`writing ${ENC.torch} (${encoder.length} tensors, ${layers} layers)`);
    await writeBin(join(out, ENC.torch), ENC.archive, encoder, seed, overwrite, log);
    written.push(ENC.torch);
  }
  if (format === 'safetensors' || format === 'both') {
    log(`writing ${ENC.safetensors} (${encoder.length} tensors)`);
    await writeSafetensors(
      join(out, ENC.safetensors),
      encoder.map((g) => ({ name: g.name, dtype: 'F32' as const, shape: g.shape, bytes: () => wholeBytes(g, seed) })),
      { metadata: { format: 'pt' }, overwrite },
    );
    written.push(ENC.safetensors);
  }
  await writeBin(join(out, COLBERT.torch), COLBERT.archive, colbert, colbertSeed, overwrite, log);
  await writeBin(join(out, SPARSE.torch), SPARSE.archive, sparse, sparseSeed, overwrite, log);
  written.push(COLBERT.torch, SPARSE.torch);
  const tWrite = performance.now() - t0;
  for (const f of written) log(`  ${f}: ${(statSync(join(out, f)).size / 2 ** 20).toFixed(1)} MB`);
  log(`wrote ${out} in ${(tWrite / 1000).toFixed(1)} s`);

  if (args.verify) {
    const t1 = performance.now();
    const checks: Array<[string, Gen[], number]> = [[COLBERT.torch, colbert, colbertSeed], [SPARSE.torch, sparse, sparseSeed]];
    if (written.includes(ENC.torch)) checks.push([ENC.torch, encoder, seed]);
    for (const [f, gens, s] of checks) {
      const src = await openTorchCheckpoint(join(out, f));
      try { await verify(src, gens, s); } finally { await src.close(); }
    }
    if (written.includes(ENC.safetensors)) {
      const src = await openSafetensors(join(out, ENC.safetensors));
      try { await verify(src, encoder, seed); } finally { await src.close(); }
    }
    log(`verified every tensor against the generator in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
