/**
 * The one writer of BGE-M3-shaped snapshots with random weights: full size (or any size) without
 * downloading 2.3 GB. Used by `bge-m3 bench --random` (through `ensureRandomCheckpoint`, which caches
 * the snapshot), by tests that need odd sizes, and by scripts/make-random-checkpoint.ts.
 *
 * A snapshot holds `config.json`, the tokenizer files of the bundled checkpoint (benchmarks feed
 * random token ids, so the vocabulary does not matter), the encoder (safetensors and/or `torch.save`)
 * and the two heads (safetensors or `torch.save`), named by weights/checkpoint-files.ts. Every tensor
 * of the weight description (model/params.ts `expectedShapes`) is written, plus the unused pooler that
 * real checkpoints carry. Values follow the fixtures' recipe: Linear and embedding matrices and biases
 * N(0, 0.02), LayerNorm weights 1 + N(0, 0.1), the padding rows of the word and position tables zero,
 * the sparse head stored as float16 with its bias + 0.05. Each tensor has its own generator seeded by
 * its name and the seed, so the values do not depend on the file format, the order of writing or the
 * chunk size: the same seed writes the same bytes. Tensors are generated one at a time (a torch
 * file's storages in 16 MB chunks), never the whole model in memory.
 */
import { chmod, copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFolderAtomic } from '../atomic-write.js';
import { parseConfig } from '../config.js';
import { BUNDLED_CHECKPOINT } from '../package-files.js';
import { expectedShapes } from '../model/params.js';
import { CHECKPOINT_PARTS, partFiles, splitByPart, type CheckpointPart } from '../weights/checkpoint-files.js';
import { toFloat16Bits } from '../weights/dtype.js';
import { writeSafetensors } from '../weights/safetensors.js';
import { openWeightFile } from '../weights/snapshot.js';
import { writeTorchCheckpoint } from '../weights/torch-writer.js';

export interface RandomModelSize {
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  vocab: number;
  positions: number;
  colbertDim: number;
}

/** BAAI/bge-m3's sizes (XLM-RoBERTa-large). */
export const LARGE: RandomModelSize = {
  hidden: 1024, layers: 24, heads: 16, intermediate: 4096, vocab: 250002, positions: 8194, colbertDim: 1024,
};

export const PRESETS: Readonly<Record<string, RandomModelSize>> = {
  large: LARGE,
  /** Same shapes, 2 layers: for quick checks of the benchmark itself. */
  'large-2l': { ...LARGE, layers: 2 },
};

/** Copied from the bundled checkpoint; the sentencepiece model only where it is there (a git checkout). */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];
const OPTIONAL_TOKENIZER_FILES = ['sentencepiece.bpe.model'];
/** Bumped when the files written change, so an old cache is rebuilt. */
const FORMAT = 'bge-m3-tfjs random checkpoint v2';
const CHUNK_ELEMS = 4 << 20; // 16 MB of float32

export function defaultCacheDir(preset: string): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'bge-m3-tfjs', `random-${preset}`);
}

export function configObject(z: RandomModelSize): Record<string, unknown> {
  return {
    architectures: ['XLMRobertaModel'], attention_probs_dropout_prob: 0.1, bos_token_id: 0, classifier_dropout: null,
    eos_token_id: 2, hidden_act: 'gelu', hidden_dropout_prob: 0.1, hidden_size: z.hidden, initializer_range: 0.02,
    intermediate_size: z.intermediate, layer_norm_eps: 1e-5, max_position_embeddings: z.positions, model_type: 'xlm-roberta',
    num_attention_heads: z.heads, num_hidden_layers: z.layers, output_past: true, pad_token_id: 1,
    position_embedding_type: 'absolute', torch_dtype: 'float32', type_vocab_size: 1, use_cache: true, vocab_size: z.vocab,
  };
}

// ---------------------------------------------------------------------------------------------
// The tensors and their values

type Init = 'normal' | 'ln' | 'bias' | 'sparse_bias';
interface Gen {
  /** The key in its part's file. */
  readonly name: string;
  readonly shape: number[];
  readonly init: Init;
  /** Row (of the first axis) forced to zero: the padding row of an embedding. */
  readonly zeroRow?: number;
  readonly half?: boolean;
}

/** Each part's seed: the heads' keys ('weight', 'bias') collide with each other, so each head has its own. */
function partSeed(part: CheckpointPart, seed: number): number {
  return part === 'colbert_linear' ? seed ^ 0x636f6c62 : part === 'sparse_linear' ? seed ^ 0x73706172 : seed;
}

/** Every tensor of the snapshot by part, in the weight description's order (the encoder's unused pooler last). */
function tensorsByPart(z: RandomModelSize): Record<CheckpointPart, Gen[]> {
  const c = parseConfig(configObject(z));
  const byPart = splitByPart([...expectedShapes(c, z.colbertDim)].map(([name, shape]) => ({ name, shape })));
  const sparse = (part: CheckpointPart) => part === 'sparse_linear';
  const gens = (part: CheckpointPart): Gen[] => byPart[part].map(({ name, shape }) => ({
    name, shape,
    init: name.endsWith('bias') ? (sparse(part) ? 'sparse_bias' : 'bias') : name.endsWith('LayerNorm.weight') ? 'ln' : 'normal',
    // the padding row of the word and position tables is zero, as in the checkpoints
    ...(/^embeddings\.(word|position)_embeddings\./.test(name) ? { zeroRow: c.pad_token_id } : {}),
    ...(sparse(part) ? { half: true } : {}), // FlagEmbedding's sparse_linear is float16
  }));
  const out = Object.fromEntries(CHECKPOINT_PARTS.map((p) => [p, gens(p)])) as Record<CheckpointPart, Gen[]>;
  out.encoder.push({ name: 'pooler.dense.weight', shape: [z.hidden, z.hidden], init: 'normal' }, { name: 'pooler.dense.bias', shape: [z.hidden], init: 'bias' });
  return out;
}

function hash32(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** xoshiro128** seeded by splitmix32, Box-Muller normals. */
class Rng {
  private a: number; private b: number; private c: number; private d: number;
  private spare: number | null = null;
  constructor(seed: number) {
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

const numel = (g: Gen): number => g.shape.reduce((a, b) => a * b, 1);
const byteLength = (g: Gen): number => numel(g) * (g.half ? 2 : 4);

/** Values of one tensor, in chunks of at most `chunk` elements (the same sequence whatever the chunk size). */
function* values(g: Gen, seed: number, chunk: number): Generator<Float32Array> {
  const rng = new Rng(hash32(g.name, seed));
  const n = numel(g);
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

/** The stored bytes of one tensor, chunk by chunk (float16 bits for a half tensor). */
function* bytesOf(g: Gen, seed: number, chunk = CHUNK_ELEMS): Generator<Uint8Array> {
  for (const v of values(g, seed, chunk)) {
    if (!g.half) { yield new Uint8Array(v.buffer, v.byteOffset, v.byteLength); continue; }
    const h = new Uint16Array(v.length);
    for (let i = 0; i < v.length; i++) h[i] = toFloat16Bits(v[i]!);
    yield new Uint8Array(h.buffer);
  }
}

function wholeBytes(g: Gen, seed: number): Uint8Array {
  const out = new Uint8Array(byteLength(g));
  let o = 0;
  for (const c of bytesOf(g, seed)) { out.set(c, o); o += c.byteLength; }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing and checking

export type RandomFormat = 'safetensors' | 'torch';

export interface RandomCheckpointOptions {
  /** Default 0. */
  seed?: number;
  /** The encoder's formats (default safetensors); a torch file is `pytorch_model.bin`. */
  encoder?: readonly RandomFormat[];
  /** The heads' format (default safetensors). */
  heads?: RandomFormat;
  /** Replace files already in `dir` (default: refuse, naming the file). */
  overwrite?: boolean;
  /** After each encoder tensor: bytes written so far and in all (of one encoder file). */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Called with a line per large tensor and per file. */
  log?: (line: string) => void;
}

/** The files `writeRandomCheckpoint` writes for these formats, with the generators and seed of each. */
function plan(z: RandomModelSize, opts: RandomCheckpointOptions): Array<{ part: CheckpointPart; file: string; format: RandomFormat; archive: string; gens: Gen[]; seed: number }> {
  const tensors = tensorsByPart(z);
  const seed = (opts.seed ?? 0) | 0;
  const formats = (part: CheckpointPart): readonly RandomFormat[] => (part === 'encoder' ? opts.encoder ?? ['safetensors'] : [opts.heads ?? 'safetensors']);
  return CHECKPOINT_PARTS.flatMap((part) => formats(part).map((format) => {
    const f = partFiles(part);
    return { part, file: format === 'torch' ? f.torch : f.safetensors, format, archive: f.archive, gens: tensors[part], seed: partSeed(part, seed) };
  }));
}

/** Bytes of the encoder's weights (one file's worth). */
export function encoderBytes(z: RandomModelSize): number {
  return tensorsByPart(z).encoder.reduce((a, g) => a + byteLength(g), 0);
}

/**
 * Writes a random snapshot of size `z` into `dir`: config.json, tokenizer files, the encoder in each
 * format asked for and the heads. Returns the weight files written.
 */
export async function writeRandomCheckpoint(dir: string, z: RandomModelSize, opts: RandomCheckpointOptions = {}): Promise<string[]> {
  const overwrite = opts.overwrite ?? false;
  const src = BUNDLED_CHECKPOINT;
  for (const f of TOKENIZER_FILES) {
    if (!existsSync(join(src, f))) throw new Error(`random checkpoint: tokenizer file ${join(src, f)} is missing (this install of bge-m3-tfjs lacks its bundled checkpoint)`);
  }
  await mkdir(dir, { recursive: true });
  const todo = plan(z, opts);
  const copies = [...TOKENIZER_FILES, ...OPTIONAL_TOKENIZER_FILES.filter((f) => existsSync(join(src, f)))];
  const clash = ['config.json', ...copies, ...todo.map((t) => t.file)].map((f) => join(dir, f)).filter((p) => existsSync(p));
  if (clash.length > 0 && !overwrite) throw new Error(`${clash.join(', ')} exist${clash.length === 1 ? 's' : ''} (pass overwrite / --force to replace)`);

  await writeFile(join(dir, 'config.json'), `${JSON.stringify(configObject(z), null, 2)}\n`);
  for (const f of copies) { await copyFile(join(src, f), join(dir, f)); await chmod(join(dir, f), 0o644); } // the fixtures may be read-only
  const log = opts.log ?? (() => {});
  for (const t of todo) {
    const path = join(dir, t.file);
    const total = t.gens.reduce((a, g) => a + byteLength(g), 0);
    let done = 0;
    const progress = (bytes: number): void => { if (t.part === 'encoder') opts.onProgress?.((done += bytes), total); };
    log(`writing ${t.file} (${t.gens.length} tensors)`);
    if (t.format === 'safetensors') {
      await writeSafetensors(path, t.gens.map((g) => ({
        name: g.name, dtype: g.half ? 'F16' as const : 'F32' as const, shape: g.shape, bytes: () => wholeBytes(g, t.seed),
      })), { metadata: { format: 'pt' }, overwrite, onTensor: (_name, bytes) => progress(bytes) });
    } else {
      await writeTorchCheckpoint(path, {
        archive: t.archive, overwrite,
        storages: t.gens.map((g, i) => ({ key: String(i), type: g.half ? 'HalfStorage' : 'FloatStorage', byteLength: byteLength(g), bytes: () => bytesOf(g, t.seed) })),
        tensors: t.gens.map((g, i) => ({ name: g.name, storage: String(i), size: g.shape })),
        onStorage: (key, bytes) => {
          progress(bytes);
          if (bytes >= 64 << 20) log(`  ${t.gens[Number(key)]!.name}: ${(bytes / 2 ** 20).toFixed(0)} MB`);
        },
      });
    }
  }
  return todo.map((t) => t.file);
}

/** Re-opens the weight files `writeRandomCheckpoint` wrote with these options and compares every tensor with a fresh generation. */
export async function verifyRandomCheckpoint(dir: string, z: RandomModelSize, opts: RandomCheckpointOptions = {}): Promise<void> {
  for (const t of plan(z, opts)) {
    const path = join(dir, t.file);
    const src = await openWeightFile(path);
    try {
      const got = src.keys().slice().sort();
      const want = t.gens.map((g) => g.name).sort();
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${path}: keys differ from the generated list`);
      for (const g of t.gens) {
        const raw = await src.readRaw(g.name);
        if (JSON.stringify(raw.shape) !== JSON.stringify(g.shape) || raw.dtype !== (g.half ? 'F16' : 'F32')) {
          throw new Error(`${path}: '${g.name}' is ${raw.dtype} [${raw.shape}], expected ${g.half ? 'F16' : 'F32'} [${g.shape}]`);
        }
        let o = 0;
        for (const c of bytesOf(g, t.seed)) {
          if (!Buffer.from(raw.bytes.buffer, raw.bytes.byteOffset + o, c.byteLength).equals(Buffer.from(c.buffer, c.byteOffset, c.byteLength))) {
            throw new Error(`${path}: '${g.name}' differs from the generator`);
          }
          o += c.byteLength;
        }
      }
    } finally {
      await src.close();
    }
  }
}

/**
 * Returns `dir` holding a complete random snapshot of size `z` (safetensors, seed 0), building it
 * first unless a complete one of the same size is there already. Built in a temporary folder swapped
 * in at the end (atomic-write.ts), so an interrupted build is never mistaken for a finished one.
 */
export async function ensureRandomCheckpoint(
  dir: string, z: RandomModelSize, onProgress?: (doneBytes: number, totalBytes: number) => void,
): Promise<{ dir: string; built: boolean; bytes: number }> {
  const stamp = `${FORMAT}\n${JSON.stringify(z)}\n`;
  const marker = join(dir, '.complete');
  if (existsSync(marker) && (await readFile(marker, 'utf8')) === stamp) return { dir, built: false, bytes: encoderBytes(z) };
  await writeFolderAtomic(dir, async (tmp) => {
    await writeRandomCheckpoint(tmp, z, { onProgress });
    await writeFile(join(tmp, '.complete'), stamp);
  });
  return { dir, built: true, bytes: (await stat(join(dir, partFiles('encoder').safetensors))).size };
}
