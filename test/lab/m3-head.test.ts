/** The lab's `m3` head is BGE-M3's own: bit-identical to encode's lexical weights, on every layer index it accepts. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { BgeM3 } from '../../src/m3.js';
import { hiddenStates, hiddenStateName } from '../../src/lab/hidden.js';
import { createHead } from '../../src/lab/heads/registry.js';
import { planBatches } from '../../src/batches.js';
import { checkpointDir } from '../helpers/fixtures.js';

const TEXTS = ['What is BGE M3?', 'Defination of BM25', 'BM25 is a bag-of-words retrieval function that ranks a set of documents.'];

describe('m3 head (sharp-m3)', () => {
  let m3: BgeM3;
  beforeAll(async () => {
    m3 = await BgeM3.load(checkpointDir('sharp-m3'));
  });
  afterAll(() => m3.dispose());

  it('equals encode().lexicalWeights exactly, and leaks no tensor', async () => {
    const enc = await m3.encode(TEXTS, { returnDense: false, returnSparse: true });
    const before = tf.memory().numTensors;
    const head = createHead('m3', m3);
    // encode's own batching (longest first): a text's outputs are bit-identical only within the same batch.
    const got = new Array(TEXTS.length);
    for (const members of planBatches(enc.inputIds.map((r) => r.length), { batchSize: 16, maxTokensPerBatch: 8192 })) {
      const ids = members.map((i) => enc.inputIds[i]!);
      const hidden = await hiddenStates(m3, ids);
      const w = await head.weigh({ inputIds: ids, hidden, side: 'document' });
      hidden.dispose();
      members.forEach((t, r) => { got[t] = w[r]; });
    }
    head.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(got).toEqual(enc.lexicalWeights);
    expect(Object.keys(got[2]!).length).toBeGreaterThan(3);
  });

  it('names hidden_states by Hugging Face index and refuses out-of-range layers', () => {
    expect(hiddenStateName(0, 2)).toBe('embeddings.hook_out');
    expect(hiddenStateName(2, 2)).toBe('encoder.layer.1.hook_out');
    expect(() => hiddenStateName(3, 2)).toThrow(/layer must be an integer in \[0, 2\]/);
    expect(() => createHead('nope', m3)).toThrow(/unknown sparse head 'nope'; known heads: m3/);
  });
});
