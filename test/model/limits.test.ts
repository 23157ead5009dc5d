/**
 * Limits that come from the checkpoint, not from constants: the default truncation length follows a short
 * position table, and a config.json vocab_size smaller than the tokenizer's vocabulary is refused at load.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BgeM3 } from '../../src/m3.js';
import { explainPair } from '../../src/explain.js';
import { buildReport } from '../../src/inspect/report.js';
import { ensureRandomCheckpoint, type RandomModelSize } from '../../src/bench/random-checkpoint.js';

const SMALL: RandomModelSize = { hidden: 32, layers: 1, heads: 4, intermediate: 64, vocab: 8002, positions: 34, colbertDim: 32 };
const LONG = 'the quick brown fox jumps over the lazy dog '.repeat(20); // ~180 tokens

describe('limits from the model', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'bge-m3-limits-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('a 34-row position table: encode, computeScore and runWithCache truncate to 32 tokens by default', async () => {
    const { dir } = await ensureRandomCheckpoint(join(root, 'short'), SMALL);
    const m3 = await BgeM3.load(dir);
    try {
      expect(m3.maxLength).toBe(32); // 34 rows − pad_token_id 1 − 1
      expect(m3.defaultMaxLength).toBe(32);
      const out = await m3.encode([LONG, 'short'], { returnSparse: true });
      expect(out.inputIds.map((r) => r.length)).toEqual([32, out.inputIds[1]!.length]);
      expect(out.inputIds[0]!.at(-1)).toBe(2); // still ends with </s>
      expect(out.inputIds[0]).toEqual(m3.tokenize([LONG], 32)[0]);
      const s = await m3.computeScore([[LONG, LONG]]);
      expect(s.dense[0]).toBeCloseTo(1, 5);
      const { cache } = await m3.runWithCache([LONG], { names: ['embeddings.hook_out'] });
      expect(cache.get('embeddings.hook_out').shape).toEqual([1, 32, 32]);
      cache.dispose();
      expect(() => m3.tokenize([LONG], 33)).toThrow(/maxLength must be an integer in \[2, 32\], got 33/);
      // explainPair and the inspection report default to the model's limit too (their own defaults are 512 / 8192).
      const ex = await explainPair(m3, LONG, LONG);
      expect(ex.scores.dense).toBeCloseTo(1, 5);
      const report = await buildReport(m3, LONG, LONG);
      expect(report.maxLength).toBe(32);
      expect(report.texts.map((t) => t.tokens.length)).toEqual([32, 32]);
    } finally {
      m3.dispose();
    }
  });

  it('refuses a config.json vocab_size smaller than the tokenizer, naming both numbers; accepts a larger one', async () => {
    const { dir: small } = await ensureRandomCheckpoint(join(root, 'v7000'), { ...SMALL, vocab: 7000 });
    await expect(BgeM3.load(small)).rejects.toThrow(/config\.json: vocab_size is 7000 but the tokenizer has 8002 ids/);
    const { dir: big } = await ensureRandomCheckpoint(join(root, 'v9000'), { ...SMALL, vocab: 9000 });
    const m3 = await BgeM3.load(big);
    try {
      expect((await m3.encode(['<mask> last id'])).inputIds[0]).toContain(8001);
    } finally {
      m3.dispose();
    }
  });
});
