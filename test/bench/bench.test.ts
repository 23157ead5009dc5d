/**
 * `bge-m3 bench`: usage errors exit 2 naming the flag; a run on a fixture prints one JSON object per
 * shape with the documented keys; the random checkpoint writer builds a loadable snapshot once and
 * reuses it; the FLOP count is the textbook one.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/bench.js';
import { BgeM3 } from '../../src/m3.js';
import { encoderFlops, parseShapes, randomIds } from '../../src/bench/bench.js';
import { ensureRandomCheckpoint } from '../../src/bench/random-checkpoint.js';
import { parseConfig } from '../../src/config.js';
import { checkpointDir } from '../helpers/fixtures.js';

function capture(): { io: { stdout: PassThrough; stderr: PassThrough }; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let o = '';
  let e = '';
  stdout.on('data', (d: Buffer) => { o += d.toString(); });
  stderr.on('data', (d: Buffer) => { e += d.toString(); });
  return { io: { stdout, stderr }, out: () => o, err: () => e };
}

describe('bge-m3 bench', () => {
  it('exits 2 on an unknown flag, naming it, and on a malformed shape', async () => {
    const a = capture();
    expect(await run(['--bogus'], a.io)).toBe(2);
    expect(a.err()).toMatch(/--bogus/);
    const b = capture();
    expect(await run(['--shapes', '1xq'], b.io)).toBe(2);
    expect(b.err()).toMatch(/shape '1xq' is not BxT/);
    const c = capture();
    expect(await run(['--model', 'x', '--random', 'large'], c.io)).toBe(2);
  });

  it('prints one JSON object per shape with the documented keys', async () => {
    const c = capture();
    const code = await run(['--model', checkpointDir('tiny-m3'), '--shapes', '1x8,3x6', '--reps', '1', '--no-torch', '--json', '--outputs', 'all'], c.io);
    expect(code, c.err()).toBe(0);
    const lines = c.out().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ event: 'load' });
    expect(lines.at(-1)).toMatchObject({ event: 'heap' });
    const shapes = lines.filter((l) => 'shape' in l);
    expect(shapes.map((l) => l.shape)).toEqual(['1x8', '3x6']);
    for (const l of shapes) {
      for (const k of ['tokens_per_s', 'median_s', 'gflops', 'peak_rss_mb']) expect(typeof l[k], k).toBe('number');
    }
  });

  it('parses shapes and counts FLOPs', () => {
    expect(parseShapes('1x16, 8x128')).toEqual([{ rows: 1, tokens: 16, label: '1x16' }, { rows: 8, tokens: 128, label: '8x128' }]);
    const c = parseConfig({
      model_type: 'xlm-roberta', vocab_size: 250002, hidden_size: 1024, num_hidden_layers: 24, num_attention_heads: 16,
      intermediate_size: 4096, max_position_embeddings: 8194, type_vocab_size: 1, layer_norm_eps: 1e-5, pad_token_id: 1,
    });
    // 24 layers × (2·128·(4·1024² + 2·1024·4096) + 4·128²·1024) ≈ 78.9 GFLOP
    expect(encoderFlops(1, 128, c) / 1e9).toBeCloseTo(78.9, 1);
    const ids = randomIds({ rows: 2, tokens: 5, label: '2x5' }, 100);
    expect(ids.map((r) => r.length)).toEqual([5, 5]);
    expect(ids[0]![0]).toBe(0);
    expect(ids[0]![4]).toBe(2);
  });
});

describe('random checkpoint writer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bge-m3-random-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a loadable snapshot once, then reuses it', async () => {
    const size = { hidden: 32, layers: 2, heads: 4, intermediate: 64, vocab: 8002, positions: 66, colbertDim: 16 };
    const target = join(dir, 'tiny');
    const first = await ensureRandomCheckpoint(target, size);
    expect(first.built).toBe(true);
    const mtime = statSync(join(target, 'model.safetensors')).mtimeMs;
    const again = await ensureRandomCheckpoint(target, size);
    expect(again.built).toBe(false);
    expect(statSync(join(target, 'model.safetensors')).mtimeMs).toBe(mtime);
    const m3 = await BgeM3.load(target);
    try {
      const out = await m3.encode({ inputIds: [[0, 5, 999, 7, 2]] }, { returnSparse: true, returnColbert: true, maxLength: 64 });
      expect(out.denseVecs![0]!.every(Number.isFinite)).toBe(true);
      expect(out.colbertVecs![0]!.dim).toBe(16);
    } finally {
      m3.dispose();
    }
  });
});
