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

/**
 * A head with weights that can be trained on a frozen encoder (`m3`, `m3-log1p`, `splade`).
 *
 * Training needs query·document scores that are differentiable in the head's variables. Each head
 * maps a padded hidden batch to a dense matrix `rep` [B, C] whose columns stand for token ids
 * (`Columns`); the score of a query and a document is then `rep_q · rep_d`, exactly the lexical
 * matching score of their weights (`lexicalMatchingScore`), since a token id absent from a text has
 * weight 0 in its row. Heads that weigh only the ids a text contains (`m3`, `m3-log1p`) use the
 * union of the batch's ids as columns (built on the host per step); vocabulary-expanding heads
 * (`splade`) use the whole vocabulary.
 */
export interface TrainableHead extends SparseHead {
  /** 'input-ids': a text's weights live on its own token ids; 'vocab': on any vocabulary id. */
  readonly space: 'input-ids' | 'vocab';
  /** The variables training updates, in a fixed order (the optimizer's state follows it). */
  readonly trainable: readonly tf.Variable[];
  /** The columns a step's representations share, from every text in the step (queries and documents). */
  columns(inputIds: readonly (readonly number[])[]): Columns;
  /**
   * Differentiable representation: hidden [B, T, H] (right-padded; row b has `inputIds[b].length`
   * real positions) -> [B, C], C = `columns.ids.length`, special ids 0. Call inside `tf.tidy`/`tf.grad`.
   */
  represent(hidden: tf.Tensor3D, inputIds: readonly (readonly number[])[], columns: Columns): tf.Tensor2D;
  /**
   * Each position's weight for its own token id, [B, T] (padding 0; special ids keep their raw
   * weight): what the sparse lens shows per layer.
   */
  tokenWeights(hidden: tf.Tensor3D, inputIds: readonly (readonly number[])[]): tf.Tensor2D;
  /** What `saveHead` writes into `head.json` besides the tensors. */
  readonly config: HeadConfig;
  /** The head's own tensors by the name they are saved under. */
  namedTensors(): Record<string, tf.Tensor>;
}

/** A column space: `ids[c]` is the token id of column c; `column(id)` is the reverse (undefined: no column). */
export interface Columns {
  readonly ids: Int32Array;
  column(id: number): number | undefined;
}

/** A trained head's description, saved as `head.json` beside its tensors. */
export interface HeadConfig {
  readonly head: string;
  /** hidden_states index the head reads (absent: the last layer). */
  readonly layer?: number;
  /** splade: weights kept per text at inference (absent: all). */
  readonly topK?: number;
  readonly hiddenSize: number;
  readonly vocabSize: number;
}
