/** Snapshot loading: file preference, key and shape checks before any tensor is read. */
import { describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSafetensors, writeSafetensors, type TensorToWrite } from '../../src/weights/safetensors.js';
import { expectedShapes } from '../../src/model/params.js';
import { openSnapshot } from '../../src/weights/snapshot.js';
import { checkpointDir } from '../helpers/fixtures.js';

/** A copy of tiny-m3 without `skip`, optionally with model.safetensors rewritten by `edit`. */
async function snapshot(skip: string[] = [], edit?: (t: TensorToWrite[]) => TensorToWrite[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'snap-'));
  for (const f of readdirSync(checkpointDir('tiny-m3'))) {
    if (!skip.includes(f) && !(edit && f === 'model.safetensors')) copyFileSync(join(checkpointDir('tiny-m3'), f), join(dir, f));
  }
  if (edit) {
    const src = await openSafetensors(join(checkpointDir('tiny-m3'), 'model.safetensors'));
    const tensors: TensorToWrite[] = src.keys().map((k) => ({ ...src.info(k), bytes: async () => (await src.readRaw(k)).bytes }));
    await writeSafetensors(join(dir, 'model.safetensors'), edit(tensors), { metadata: { format: 'pt' } });
    await src.close();
  }
  return dir;
}

describe('openSnapshot', () => {
  it('prefers model.safetensors, falls back to pytorch_model.bin, and reads heads from .pt', async () => {
    const a = await openSnapshot(checkpointDir('tiny-m3'), expectedShapes);
    expect(a.files.encoder).toMatch(/model\.safetensors$/);
    expect(a.files.colbert_linear).toMatch(/colbert_linear\.pt$/);
    expect([...a.ignoredKeys].sort()).toEqual(['pooler.dense.bias', 'pooler.dense.weight']);
    expect(a.unexpectedKeys).toEqual([]);
    const b = await openSnapshot(await snapshot(['model.safetensors']), expectedShapes);
    expect(b.files.encoder).toMatch(/pytorch_model\.bin$/);
    const name = 'encoder.layer.1.output.dense.weight';
    expect(Array.from((await a.take(name)).data)).toEqual(Array.from((await b.take(name)).data));
    // the sparse head is float16 on disk and read as its exact float32 values
    const sparse = await a.take('sparse_linear.weight');
    expect(sparse.shape).toEqual([1, a.config.hidden_size]);
    await Promise.all([a.close(), b.close()]);
  });

  it('names a missing snapshot, missing weight files and a missing config', async () => {
    await expect(openSnapshot('/nonexistent/snap', expectedShapes)).rejects.toThrow(/\/nonexistent\/snap: snapshot directory does not exist/);
    await expect(openSnapshot(await snapshot(['model.safetensors', 'pytorch_model.bin']), expectedShapes)).rejects.toThrow(/no encoder weights.*model\.safetensors, pytorch_model\.bin/);
    await expect(openSnapshot(await snapshot(['colbert_linear.pt']), expectedShapes)).rejects.toThrow(/no 'colbert_linear' head.*colbert_linear\.safetensors, colbert_linear\.pt/);
    await expect(openSnapshot(await snapshot(['config.json']), expectedShapes)).rejects.toThrow(/config\.json.*cannot be read/);
  });

  it('names a missing tensor', async () => {
    const dir = await snapshot([], (t) => t.filter((x) => x.name !== 'encoder.layer.1.attention.self.key.bias'));
    await expect(openSnapshot(dir, expectedShapes)).rejects.toThrow(/model\.safetensors: missing tensor 'encoder\.layer\.1\.attention\.self\.key\.bias'/);
  });

  it('names a tensor whose shape disagrees with config.json', async () => {
    const dir = await snapshot([], (t) => t.map((x) => (x.name === 'encoder.layer.0.intermediate.dense.weight'
      ? { ...x, shape: [x.shape[1]!, x.shape[0]!] } : x)));
    await expect(openSnapshot(dir, expectedShapes)).rejects.toThrow(/tensor 'encoder\.layer\.0\.intermediate\.dense\.weight' has shape \[32, 64\], config\.json implies \[64, 32\]/);
    // a config that disagrees with the weights is caught the same way
    const dir2 = await snapshot();
    const cfg = JSON.parse(readFileSync(join(dir2, 'config.json'), 'utf8'));
    writeFileSync(join(dir2, 'config.json'), JSON.stringify({ ...cfg, intermediate_size: 128 }));
    await expect(openSnapshot(dir2, expectedShapes)).rejects.toThrow(/intermediate\.dense\.weight' has shape \[64, 32\], config\.json implies \[128, 32\]/);
  });

  it('names an integer-typed weight', async () => {
    const dir = await snapshot([], (t) => t.map((x) => (x.name === 'embeddings.LayerNorm.bias' ? { ...x, dtype: 'I32' as const } : x)));
    await expect(openSnapshot(dir, expectedShapes)).rejects.toThrow(/'embeddings\.LayerNorm\.bias' has dtype I32, expected a float dtype/);
  });

  it('reports unexpected tensors without refusing the snapshot', async () => {
    const dir = await snapshot([], (t) => [...t, { name: 'lm_head.bias', dtype: 'F32', shape: [2], bytes: () => new Uint8Array(8) }]);
    const s = await openSnapshot(dir, expectedShapes);
    expect(s.unexpectedKeys).toEqual(['lm_head.bias']);
    await s.close();
  });
});
