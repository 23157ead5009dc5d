/**
 * `m3`: BGE-M3's own sparse head, relu(sparse_linear(h)) per token, the largest weight per token
 * id, special ids dropped: the same numbers as `BgeM3.encode(…, { returnSparse: true })`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { sparseHead } from '../../heads/sparse.js';
import { NO_HOOKS } from '../../hooks/runner.js';
import type { BgeM3 } from '../../m3.js';
import type { LexicalWeights } from '../../scores.js';
import type { HeadInput, SparseHead } from './head.js';

export class M3Head implements SparseHead {
  readonly name = 'm3';
  readonly needsHidden = true;

  constructor(private readonly model: BgeM3, readonly layer?: number) {}

  async weigh(input: HeadInput): Promise<LexicalWeights[]> {
    if (!input.hidden) throw new Error(`sparse head '${this.name}' needs hidden states`);
    const [, T] = input.hidden.shape;
    const w = tf.tidy(() => sparseHead(input.hidden!, this.model.params.sparse_linear, NO_HOOKS)); // [B, T]
    try {
      const data = (await w.data()) as Float32Array;
      return input.inputIds.map((ids, b) => this.model.lexicalWeights(ids, data.subarray(b * T, b * T + ids.length)));
    } finally {
      w.dispose();
    }
  }

  dispose(): void {}
}
