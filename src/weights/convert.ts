/**
 * Converts a snapshot's PyTorch files to safetensors next to them, part by part (the encoder's
 * and each head's file: weights/checkpoint-files.ts). Keys and dtypes are unchanged. Tensors are read and written one at a
 * time, so peak memory stays near the largest tensor. Each file is written to a temporary name and
 * renamed when complete; an existing target is never replaced unless `force`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CHECKPOINT_PARTS, partFiles } from './checkpoint-files.js';
import { writeSafetensors } from './safetensors.js';
import { writeFileAtomic } from '../atomic-write.js';
import { openTorchCheckpoint } from './torch.js';
import { DTYPE_SIZE, numel } from './types.js';

/** [PyTorch file, safetensors file] of each part of a snapshot. */
export const CONVERSIONS: ReadonlyArray<readonly [string, string]> = CHECKPOINT_PARTS.map((p) => [partFiles(p).torch, partFiles(p).safetensors]);

export interface ConvertOptions {
  force?: boolean;
  /** Called once per file with its total bytes, then after each tensor with the bytes written so far. */
  onFile?: (source: string, target: string, totalBytes: number) => void;
  onProgress?: (bytesDone: number) => void;
}

export interface ConvertedFile { source: string; target: string; tensors: number; bytes: number }

export async function convertSnapshot(dir: string, opts: ConvertOptions = {}): Promise<ConvertedFile[]> {
  const todo = CONVERSIONS.map(([s, t]) => [join(dir, s), join(dir, t)] as const).filter(([s]) => existsSync(s));
  if (todo.length === 0) {
    throw new Error(`${dir}: no PyTorch files to convert (looked for ${CONVERSIONS.map(([s]) => s).join(', ')})`);
  }
  const clash = todo.filter(([, t]) => existsSync(t)).map(([, t]) => t);
  if (clash.length > 0 && !opts.force) throw new Error(`${clash.join(', ')} already exist${clash.length === 1 ? 's' : ''}; pass --force to replace`);

  const done: ConvertedFile[] = [];
  for (const [source, target] of todo) {
    const ckpt = await openTorchCheckpoint(source);
    try {
      const infos = ckpt.keys().map((k) => ckpt.info(k));
      const total = infos.reduce((n, i) => n + numel(i.shape) * DTYPE_SIZE[i.dtype], 0);
      opts.onFile?.(source, target, total);
      let written = 0;
      await writeFileAtomic(target, (tmp) => writeSafetensors(tmp, infos.map((info) => ({
        name: info.name, dtype: info.dtype, shape: info.shape,
        bytes: async () => (await ckpt.readRaw(info.name)).bytes,
      })), {
        metadata: { format: 'pt' },
        onTensor: (_name, bytes) => opts.onProgress?.((written += bytes)),
      }));
      done.push({ source, target, tensors: infos.length, bytes: total });
    } finally {
      await ckpt.close();
    }
  }
  return done;
}
