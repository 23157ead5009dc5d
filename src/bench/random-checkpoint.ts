/**
 * A BGE-M3-shaped snapshot with random weights, for benchmarks: full size (or any size) without
 * downloading 2.3 GB. Written as safetensors tensor by tensor (never the whole model in memory):
 * `config.json`, `model.safetensors`, `colbert_linear.safetensors`, `sparse_linear.safetensors` and
 * the tokenizer files of the bundled checkpoint (benchmarks feed random token ids, so the vocabulary
 * does not matter). Values: Linear and embedding matrices uniform with std 0.02 (as the fixtures'
 * N(0, 0.02)), LayerNorm weights near 1, small biases; seeded, so every build is the same.
 */
import { copyFile, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFolderAtomic } from '../atomic-write.js';
import { parseConfig } from '../config.js';
import { BUNDLED_CHECKPOINT } from '../package-files.js';
import { expectedShapes } from '../model/params.js';
import { partFiles, splitByPart, type CheckpointPart } from '../weights/checkpoint-files.js';
import { writeSafetensors, type TensorToWrite } from '../weights/safetensors.js';

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

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];
/** Bumped when the files written change, so an old cache is rebuilt. */
const FORMAT = 'bge-m3-tfjs random checkpoint v1';

/** The bundled checkpoint's folder (shipped in the tarball): the tokenizer files come from there. */
export function fixtureTokenizerDir(): string {
  return BUNDLED_CHECKPOINT;
}

export function defaultCacheDir(preset: string): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'bge-m3-tfjs', `random-${preset}`);
}

/** xorshift32 stream of floats uniform in [−a, a). */
function fill(out: Float32Array, seed: number, a: number, offset = 0): void {
  let s = (seed * 2654435761) >>> 0 || 1;
  const k = (2 * a) / 4294967296;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out[i] = offset + s * k - a;
  }
}

type Init = 'matrix' | 'ln' | 'bias';

type Spec = { name: string; shape: number[]; init: Init };

/** Initialisation by role, read from the weight name. */
const initOf = (name: string): Init => (name.endsWith('.bias') ? 'bias' : name.endsWith('LayerNorm.weight') ? 'ln' : 'matrix');

/**
 * Every tensor of the snapshot, split by file: names and shapes come from the model's own
 * `expectedShapes`, so the random checkpoint cannot drift from what the loader checks.
 */
function tensorLists(z: RandomModelSize): Record<CheckpointPart, Spec[]> {
  return splitByPart([...expectedShapes(parseConfig(configObject(z)), z.colbertDim)].map(([name, shape]) => ({ name, shape, init: initOf(name) })));
}

function toWrite(list: Spec[], seedBase: number): TensorToWrite[] {
  const STD = 0.02;
  return list.map((t, i) => ({
    name: t.name,
    dtype: 'F32' as const,
    shape: t.shape,
    bytes: () => {
      const n = t.shape.reduce((a, b) => a * b, 1);
      const x = new Float32Array(n);
      if (t.init === 'matrix') fill(x, seedBase + i, STD * Math.sqrt(3));
      else if (t.init === 'ln') fill(x, seedBase + i, 0.1, 1);
      else fill(x, seedBase + i, 0.02);
      return new Uint8Array(x.buffer);
    },
  }));
}

function configObject(z: RandomModelSize): Record<string, unknown> {
  return {
    architectures: ['XLMRobertaModel'], attention_probs_dropout_prob: 0.1, bos_token_id: 0, classifier_dropout: null,
    eos_token_id: 2, hidden_act: 'gelu', hidden_dropout_prob: 0.1, hidden_size: z.hidden, initializer_range: 0.02,
    intermediate_size: z.intermediate, layer_norm_eps: 1e-5, max_position_embeddings: z.positions, model_type: 'xlm-roberta',
    num_attention_heads: z.heads, num_hidden_layers: z.layers, output_past: true, pad_token_id: 1,
    position_embedding_type: 'absolute', torch_dtype: 'float32', type_vocab_size: 1, use_cache: true, vocab_size: z.vocab,
  };
}

/**
 * Returns `dir` holding a complete random snapshot of size `z`, building it first unless a complete
 * one of the same size is there already. Builds beside `dir` and moves it in complete (`writeFolderAtomic`), so an
 * interrupted build is never mistaken for a finished one.
 */
export async function ensureRandomCheckpoint(
  dir: string, z: RandomModelSize, onProgress?: (doneBytes: number, totalBytes: number) => void,
): Promise<{ dir: string; built: boolean; bytes: number }> {
  const stamp = `${FORMAT}\n${JSON.stringify(z)}\n`;
  const marker = join(dir, '.complete');
  const lists = tensorLists(z);
  const total = lists.encoder.reduce((a, t) => a + 4 * t.shape.reduce((x, y) => x * y, 1), 0);
  if (existsSync(marker)) {
    const { readFile } = await import('node:fs/promises');
    if ((await readFile(marker, 'utf8')) === stamp) return { dir, built: false, bytes: total };
  }
  const src = fixtureTokenizerDir();
  for (const f of TOKENIZER_FILES) {
    if (!existsSync(join(src, f))) throw new Error(`random checkpoint: tokenizer file ${join(src, f)} is missing (this install of bge-m3-tfjs lacks its bundled checkpoint)`);
  }
  let done = 0;
  await writeFolderAtomic(dir, async (tmp) => {
  await writeSafetensors(join(tmp, partFiles('encoder').safetensors), toWrite(lists.encoder, 1), {
    metadata: { format: 'pt' },
    onTensor: (_name, bytes) => { done += bytes; onProgress?.(done, total); },
  });
  await writeSafetensors(join(tmp, partFiles('colbert_linear').safetensors), toWrite(lists.colbert_linear, 100_000));
  await writeSafetensors(join(tmp, partFiles('sparse_linear').safetensors), toWrite(lists.sparse_linear, 200_000));
  await writeFile(join(tmp, 'config.json'), `${JSON.stringify(configObject(z), null, 2)}\n`);
  for (const f of TOKENIZER_FILES) await copyFile(join(src, f), join(tmp, f));
  await writeFile(join(tmp, '.complete'), stamp);
  });
  return { dir, built: true, bytes: (await stat(join(dir, partFiles('encoder').safetensors))).size };
}
