/**
 * The `tensorflow` backend (@tensorflow/tfjs-node, an optional peer that cannot be installed
 * everywhere): when it is importable, the model on it matches the float64 reference like the wasm
 * backend does; when it is not, the suite is skipped and says why.
 */
import { describe, expect, it } from 'vitest';
import { BgeM3 } from '../src/m3.js';
import { checkpointDir } from './helpers/fixtures.js';
import { loadCases, maxAbsDiff, Reference, sparseMaxAbsDiff } from './helpers/reference.js';

const pkg = '@tensorflow/tfjs-node';
const why = await import(pkg).then(() => null, (e: unknown) => (e as Error).message.split('\n')[0]);
if (why) console.log(`tensorflow backend parity skipped: ${pkg} is not importable (${why})`);

describe.skipIf(why !== null)('tensorflow backend (tfjs-node) parity with the float64 reference', () => {
  it('sharp-m3: dense, lexical weights and ColBERT vectors', async () => {
    const m3 = await BgeM3.load(checkpointDir('sharp-m3'), { backend: 'tensorflow' });
    const ref = await Reference.open('sharp-m3');
    try {
      const cases = loadCases().filter((c) => c.id !== 'long_3k');
      const out = await m3.encode({ inputIds: cases.map((c) => c.input_ids) }, { returnDense: true, returnSparse: true, returnColbert: true });
      for (const [i, c] of cases.entries()) {
        expect(maxAbsDiff(out.denseVecs![i]!, (await ref.tensor(c.id, 'dense_head.hook_out')).data), c.id).toBeLessThanOrEqual(1e-4);
        expect(maxAbsDiff(out.colbertVecs![i]!.data, (await ref.tensor(c.id, 'colbert_head.hook_out')).data), c.id).toBeLessThanOrEqual(1e-4);
        expect(sparseMaxAbsDiff(out.lexicalWeights![i]!, ref.json.cases[c.id]!.lexical_weights), c.id).toBeLessThanOrEqual(1e-4);
      }
    } finally {
      m3.dispose();
      await ref.close();
    }
  });
});
