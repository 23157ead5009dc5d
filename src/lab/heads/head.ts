/**
 * The sparse-head lab's one interface. A sparse head turns a batch of texts into lexical weights
 * (token id -> weight, as `BgeM3.encode`'s `lexicalWeights`): BGE-M3's own head, its variants, a
 * vocabulary-expanding SPLADE head, or a classic baseline (BM25, idf) that reads token ids only.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { LexicalWeights } from '../../scores.js';

/** Queries and documents may be weighed differently (BM25 weighs a query term by its count only). */
export type Side = 'query' | 'document';

/** What a head sees for one batch of texts. */
export interface HeadInput {
  /** Token ids per text, `<s> … </s>`, unpadded, in batch order. */
  readonly inputIds: readonly (readonly number[])[];
  /**
   * Hidden states of the right-padded batch, [B, T, H], from the layer the head reads (see
   * `SparseHead.layer`); absent for heads whose `needsHidden` is false. The caller owns it.
   */
  readonly hidden?: tf.Tensor3D;
  readonly side: Side;
}

export interface SparseHead {
  /** The name it is selected by (`m3`, `m3-log1p`, `splade`, `bm25`, `idf`, …). */
  readonly name: string;
  /** False for heads that read token ids only (BM25, idf): no encoder pass is needed. */
  readonly needsHidden: boolean;
  /**
   * Which hidden state the head reads, as an index into Hugging Face's `hidden_states`: 0 is
   * `embeddings.hook_out`, i + 1 is `encoder.layer.<i>.hook_out`; undefined means the last layer.
   */
  readonly layer?: number;
  /** Lexical weights per text: token id (decimal string) -> weight > 0, special ids dropped. */
  weigh(input: HeadInput): Promise<LexicalWeights[]>;
  /**
   * Heads whose weights depend on corpus statistics (BM25, idf) learn them here from the corpus's
   * token ids (each `<s> … </s>`), before any document is weighed. Absent for other heads.
   */
  fit?(docs: readonly (readonly number[])[]): void;
  /** Frees the head's own tensors (not the model's). */
  dispose(): void;
}
