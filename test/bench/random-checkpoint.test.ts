/**
 * The one random-checkpoint writer (src/bench/random-checkpoint.ts): the same seed writes the same
 * bytes in every format, the formats hold the same values, a snapshot it writes loads, and it never
 * replaces a file unless asked.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyRandomCheckpoint, writeRandomCheckpoint, type RandomCheckpointOptions } from '../../src/bench/random-checkpoint.js';
import { openSafetensors } from '../../src/weights/safetensors.js';
import { openTorchCheckpoint } from '../../src/weights/torch.js';
import { openSnapshot } from '../../src/weights/snapshot.js';
import { expectedShapes } from '../../src/model/params.js';

const SIZE = { hidden: 32, layers: 2, heads: 4, intermediate: 64, vocab: 8002, positions: 66, colbertDim: 16 };
const root = mkdtempSync(join(tmpdir(), 'bge-m3-random-writer-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('random checkpoint writer', () => {
  const opts: RandomCheckpointOptions = { seed: 11, encoder: ['torch', 'safetensors'], heads: 'torch' };

  it('writes the same bytes for the same seed, other bytes for another seed, and checks against its generator', async () => {
    const files = await writeRandomCheckpoint(join(root, 'a'), SIZE, opts);
    expect(files).toEqual(['pytorch_model.bin', 'model.safetensors', 'colbert_linear.pt', 'sparse_linear.pt']);
    await writeRandomCheckpoint(join(root, 'b'), SIZE, opts);
    await writeRandomCheckpoint(join(root, 'c'), SIZE, { ...opts, seed: 12 });
    for (const f of [...files, 'config.json', 'tokenizer.json']) {
      expect(readFileSync(join(root, 'b', f)).equals(readFileSync(join(root, 'a', f))), f).toBe(true);
      if (f.endsWith('.bin') || f.endsWith('.pt') || f.endsWith('.safetensors')) {
        expect(readFileSync(join(root, 'c', f)).equals(readFileSync(join(root, 'a', f))), f).toBe(false);
      }
    }
    await verifyRandomCheckpoint(join(root, 'a'), SIZE, opts);
    await expect(verifyRandomCheckpoint(join(root, 'c'), SIZE, opts)).rejects.toThrow(/differs from the generator/);
  });

  it('holds the same values in both encoder formats, the recipe the fixtures follow, and loads as a snapshot', async () => {
    const dir = join(root, 'a');
    const bin = await openTorchCheckpoint(join(dir, 'pytorch_model.bin'));
    const st = await openSafetensors(join(dir, 'model.safetensors'));
    try {
      expect(bin.keys().slice().sort()).toEqual(st.keys().slice().sort());
      for (const k of st.keys()) expect(Buffer.from((await bin.readRaw(k)).bytes).equals(Buffer.from((await st.readRaw(k)).bytes)), k).toBe(true);
      const word = await st.readFloat32('embeddings.word_embeddings.weight'); // [vocab, H], row 1 (padding) zero
      const H = SIZE.hidden;
      expect(word.data.subarray(H, 2 * H).every((v) => v === 0)).toBe(true);
      let sum = 0; let sq = 0;
      for (let i = 2 * H; i < word.data.length; i++) { sum += word.data[i]!; sq += word.data[i]! ** 2; }
      const n = word.data.length - 2 * H;
      const std = Math.sqrt(sq / n - (sum / n) ** 2);
      console.log(`word embeddings: mean ${(sum / n).toExponential(2)}, std ${std.toFixed(5)} (recipe: 0, 0.02)`);
      expect(Math.abs(std - 0.02)).toBeLessThan(0.0005);
      const ln = await st.readFloat32('encoder.layer.0.output.LayerNorm.weight');
      expect(Math.abs(ln.data.reduce((a, b) => a + b, 0) / H - 1)).toBeLessThan(0.1);
    } finally {
      await bin.close(); await st.close();
    }
    const sparse = await openTorchCheckpoint(join(dir, 'sparse_linear.pt'));
    try { expect(sparse.info('weight').dtype).toBe('F16'); } finally { await sparse.close(); }
    const snap = await openSnapshot(dir, expectedShapes);
    try {
      expect(snap.colbertDim).toBe(SIZE.colbertDim);
      expect(snap.ignoredKeys.slice().sort()).toEqual(['pooler.dense.bias', 'pooler.dense.weight']);
      expect(snap.unexpectedKeys).toEqual([]);
    } finally {
      await snap.close();
    }
  });

  it('refuses to replace files unless asked, naming them', async () => {
    await expect(writeRandomCheckpoint(join(root, 'a'), SIZE, opts)).rejects.toThrow(/config\.json.*exist/);
    await writeRandomCheckpoint(join(root, 'a'), SIZE, { ...opts, overwrite: true });
    await verifyRandomCheckpoint(join(root, 'a'), SIZE, opts);
  });
});
