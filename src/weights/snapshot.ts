/**
 * A `BAAI/bge-m3` snapshot directory, as `huggingface-cli download` leaves it:
 * `config.json`, tokenizer files, the encoder in `model.safetensors` (else `pytorch_model.bin`),
 * and the heads `colbert_linear.*` / `sparse_linear.*` (`.safetensors`, else `.pt`).
 * The head files hold `weight` / `bias`; they are read as `colbert_linear.weight` etc.
 * The folder is a directory (Node), a folder URL or picked File objects (folder.ts).
 */
import { loadConfig, type XLMRobertaConfig } from '../config.js';
import { CHECKPOINT_PARTS, locateTensor, partCandidates, tensorName, type CheckpointPart } from './checkpoint-files.js';
import { dirFolder, type ModelFolder } from './folder.js';
import { openSafetensors } from './safetensors.js';
import type { ByteSource } from './source.js';
import { openTorchCheckpoint } from './torch.js';
import { WeightFileError, type HostTensor, type TensorSource } from './types.js';


/** Keys a BGE-M3 checkpoint carries that the model does not use. */
const KNOWN_UNUSED = /^(pooler\.dense\.(weight|bias)|embeddings\.position_ids)$/;

/** A weight file by its format, told by its name: `.safetensors`, else a torch.save archive. */
export function openWeightFile(from: string | ByteSource): Promise<TensorSource> {
  const name = typeof from === 'string' ? from : from.name;
  return name.endsWith('.safetensors') ? openSafetensors(from) : openTorchCheckpoint(from);
}

/** The file (name within the folder) a snapshot loads for the encoder or a head, by the preference order above. */
export async function snapshotFile(folder: ModelFolder, part: CheckpointPart): Promise<string> {
  const candidates = partCandidates(part);
  for (const f of candidates) if (await folder.has(f)) return f;
  throw new WeightFileError(folder.name, `no ${part === 'encoder' ? 'encoder weights' : `'${part}' head`} in the snapshot (looked for ${candidates.join(', ')})`);
}

export interface SnapshotWeights {
  /** The folder's name: its directory or URL. */
  readonly dir: string;
  readonly config: XLMRobertaConfig;
  /** ColBERT output size, read from `colbert_linear.weight`. */
  readonly colbertDim: number;
  /** The files read, by part (paths or URLs). */
  readonly files: Readonly<Record<CheckpointPart, string>>;
  /** Keys a BGE-M3 checkpoint has but the model does not use (`pooler.*`). */
  readonly ignoredKeys: readonly string[];
  /** Keys no BGE-M3 checkpoint should have: reported by the loader as a warning. */
  readonly unexpectedKeys: readonly string[];
  /** Reads one tensor by full name (`encoder.layer.0.attention.self.query.weight`, `colbert_linear.bias` …). */
  take(name: string): Promise<HostTensor>;
  /** The file a full name is read from, and its key there (`colbert_linear.bias` -> colbert_linear.pt, `bias`). */
  locate(name: string): { file: string; key: string };
  /** The open weight file a full name is read from, and its key there. */
  source(name: string): { source: TensorSource; key: string } | undefined;
  close(): Promise<void>;
}

/** Name-to-file routing: head tensors live in their own files, under the name without the head prefix. */
function locate(files: Readonly<Record<CheckpointPart, string>>, name: string): { file: string; key: string } {
  const { part, key } = locateTensor(name);
  return { file: files[part], key };
}

/** The name and shape of every tensor the model reads, given the config and the ColBERT size (the weight tree's `expectedShapes`). */
export type ExpectedShapes = (config: XLMRobertaConfig, colbertDim: number) => ReadonlyMap<string, readonly number[]>;

/**
 * Opens the snapshot's files and checks, before any tensor is read, that every `expected` key is
 * present with its shape. Errors name the file and the tensor.
 */
export async function openSnapshot(from: string | ModelFolder, expectedShapes: ExpectedShapes): Promise<SnapshotWeights> {
  const folder = typeof from === 'string' ? dirFolder(from) : from;
  if (typeof from === 'string' && !(await folder.has('.'))) throw new WeightFileError(from, 'snapshot directory does not exist');
  const dir = folder.name;
  const config = await loadConfig(folder.path('config.json'), () => folder.text('config.json'));
  const names = {} as Record<CheckpointPart, string>;
  for (const p of CHECKPOINT_PARTS) names[p] = await snapshotFile(folder, p);
  const files = Object.fromEntries(CHECKPOINT_PARTS.map((p) => [p, folder.path(names[p])])) as Record<CheckpointPart, string>;
  const sources: TensorSource[] = [];
  try {
    // Where each full name lives.
    const where = new Map<string, [TensorSource, string]>();
    for (const part of CHECKPOINT_PARTS) {
      const source = await openWeightFile(await folder.open(names[part]));
      sources.push(source);
      for (const k of source.keys()) where.set(tensorName(part, k), [source, k]);
    }

    const cw = where.get('colbert_linear.weight');
    if (!cw) throw new WeightFileError(files.colbert_linear, "missing tensor 'weight'");
    const colbertDim = cw[0].info(cw[1]).shape[0]!;
    const expected = expectedShapes(config, colbertDim);
    for (const [name, shape] of expected) {
      const at = where.get(name);
      const { file, key } = locate(files, name);
      if (!at) throw new WeightFileError(file, `missing tensor '${key}'`);
      const info = at[0].info(at[1]);
      if (info.shape.length !== shape.length || info.shape.some((d, j) => d !== shape[j])) {
        throw new WeightFileError(file, `tensor '${at[1]}' has shape [${info.shape.join(', ')}], config.json implies [${shape.join(', ')}]`);
      }
      if (!['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) {
        throw new WeightFileError(file, `tensor '${at[1]}' has dtype ${info.dtype}, expected a float dtype`);
      }
    }
    const unused = [...where.keys()].filter((k) => !expected.has(k));
    return {
      dir, config, colbertDim, files,
      ignoredKeys: unused.filter((k) => KNOWN_UNUSED.test(k)),
      unexpectedKeys: unused.filter((k) => !KNOWN_UNUSED.test(k)),
      take: async (name) => {
        const at = where.get(name);
        if (!at) throw new Error(`snapshot ${dir}: no tensor '${name}'`);
        return at[0].readFloat32(at[1]);
      },
      locate: (name) => locate(files, name),
      source: (name) => {
        const at = where.get(name);
        return at && { source: at[0], key: at[1] };
      },
      close: async () => { await Promise.all(sources.map((s) => s.close())); },
    };
  } catch (e) {
    await Promise.all(sources.map((s) => s.close()));
    throw e;
  }
}

