/**
 * Writes a full-size BGE-M3 snapshot folder with random weights, for exercising the loaders on the
 * real shapes (hidden 1024, 24 layers, 16 heads, intermediate 4096, vocab 250002, 8194 positions)
 * without downloading 2.3 GB.
 *
 *   npx tsx scripts/make-random-checkpoint.ts --out DIR [--format bin|safetensors|both] [--layers N]
 *                                             [--seed S] [--force] [--verify]
 *
 * The encoder as pytorch_model.bin (torch.save zip format) and/or model.safetensors, the heads as
 * torch.save files (colbert_linear float32, sparse_linear float16), config.json and the tokenizer files:
 * the project's one random-checkpoint writer (src/bench/random-checkpoint.ts) does the work and
 * describes the values; the same seed writes the same bytes.
 * --verify re-opens what was written and compares every tensor with a fresh generation.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LARGE, verifyRandomCheckpoint, writeRandomCheckpoint, type RandomCheckpointOptions, type RandomFormat } from '../src/bench/random-checkpoint.js';

const FORMATS: Record<string, RandomFormat[]> = { bin: ['torch'], safetensors: ['safetensors'], both: ['torch', 'safetensors'] };

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      out: { type: 'string' },
      format: { type: 'string', default: 'bin' },
      layers: { type: 'string', default: String(LARGE.layers) },
      seed: { type: 'string', default: '0' },
      force: { type: 'boolean', default: false },
      verify: { type: 'boolean', default: false },
    },
  });
  if (!args.out) throw new Error('usage: make-random-checkpoint --out DIR [--format bin|safetensors|both] [--layers N] [--seed S] [--force] [--verify]');
  const encoder = FORMATS[args.format];
  if (!encoder) throw new Error(`--format must be bin, safetensors or both, not '${args.format}'`);
  const layers = Number(args.layers);
  if (!Number.isInteger(layers) || layers < 1 || layers > 64) throw new Error(`--layers must be an integer in 1..64, not '${args.layers}'`);
  const seed = Number(args.seed);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, not '${args.seed}'`);
  const size = { ...LARGE, layers, colbertDim: LARGE.hidden };
  const opts: RandomCheckpointOptions = { seed, encoder, heads: 'torch', overwrite: args.force, log: (s) => console.log(s) };

  const t0 = performance.now();
  const written = await writeRandomCheckpoint(args.out, size, opts);
  for (const f of written) console.log(`  ${f}: ${(statSync(join(args.out, f)).size / 2 ** 20).toFixed(1)} MB`);
  console.log(`wrote ${args.out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (args.verify) {
    const t1 = performance.now();
    await verifyRandomCheckpoint(args.out, size, opts);
    console.log(`verified every tensor against the generator in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
