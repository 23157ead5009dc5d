/**
 * The real BAAI/bge-m3 against FlagEmbedding's published fp32 tutorial numbers. Runs only when a
 * snapshot is in weights/bge-m3 (`bge-m3 download`); it cannot run on a machine without the hub.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BgeM3 } from '../../src/m3.js';
import { PASSAGES, QUERIES, REAL_WEIGHTS } from '../../src/cli/demo.js';

const present = existsSync(join(REAL_WEIGHTS, 'config.json'));
if (!present) console.log(`real-model test skipped: no snapshot in ${REAL_WEIGHTS} (run \`bge-m3 download\` to fetch BAAI/bge-m3)`);

// Published by FlagEmbedding (fp32): queries encoded with max_length 10, passages with max_length 100.
const PUBLISHED = {
  dense: [[0.6259035, 0.34749585], [0.349868, 0.6782462]],
  lexical: { q0p0: 0.19554448500275612, q0p1: 0.00880391988903284 },
  colbert: { q0p0: 0.7796662449836731, q0p1: 0.4621177911758423 },
  colbertShapes: { q0: [8, 1024], p0: [30, 1024] },
};

describe.skipIf(!present)('BAAI/bge-m3 reproduces FlagEmbedding\'s published numbers', () => {
  let m3: BgeM3;
  beforeAll(async () => {
    m3 = await BgeM3.load(REAL_WEIGHTS);
  }, 600_000);
  afterAll(() => m3?.dispose());

  it('dense, lexical and ColBERT scores to 1e-4', async () => {
    const all = { returnDense: true, returnSparse: true, returnColbert: true };
    const q = await m3.encode(QUERIES, { ...all, maxLength: 10 });
    const p = await m3.encode(PASSAGES, { ...all, maxLength: 100 });
    const dense = q.denseVecs!.map((a) => p.denseVecs!.map((b) => m3.denseScore(a, b)));
    const errs = {
      dense: Math.max(...dense.flatMap((r, i) => r.map((v, j) => Math.abs(v - PUBLISHED.dense[i]![j]!)))),
      lexical: Math.max(Math.abs(m3.computeLexicalMatchingScore(q.lexicalWeights![0]!, p.lexicalWeights![0]!) - PUBLISHED.lexical.q0p0),
        Math.abs(m3.computeLexicalMatchingScore(q.lexicalWeights![0]!, p.lexicalWeights![1]!) - PUBLISHED.lexical.q0p1)),
      colbert: Math.max(Math.abs(m3.colbertScore(q.colbertVecs![0]!, p.colbertVecs![0]!) - PUBLISHED.colbert.q0p0),
        Math.abs(m3.colbertScore(q.colbertVecs![0]!, p.colbertVecs![1]!) - PUBLISHED.colbert.q0p1)),
    };
    console.log('real model vs published: max abs error', errs);
    expect([q.colbertVecs![0]!.rows, q.colbertVecs![0]!.dim]).toEqual(PUBLISHED.colbertShapes.q0);
    expect([p.colbertVecs![0]!.rows, p.colbertVecs![0]!.dim]).toEqual(PUBLISHED.colbertShapes.p0);
    for (const e of Object.values(errs)) expect(e).toBeLessThanOrEqual(1e-4);
  }, 600_000);
});
