/**
 * Heads of BGE-M3's own shape: one weight per token from a linear map of its hidden state,
 * w_t = act(W_lex·h_t + b), the largest weight per token id, special ids dropped. `m3` uses
 * act = relu (the model's head, trainable); `m3-log1p` uses act = log(1 + relu(·)), SPLADE's
 * saturation, which damps the few very large weights that dominate a lexical match.
 *
 * Training representation: per step the host builds a one-hot map M [B, T, C] from each position's
 * token id to its column (padding and special ids map nowhere); rep = max_t (w[b, t] · M[b, t, c]).
 * Since w >= 0, this is the largest weight per id, the same pooling as inference, and tf.max sends
 * the gradient to the position that won. M costs B·T·C floats: with C <= B·T that is small for
 * short queries and passages, and the reason training batches of long passages stay modest.
 *
 * The forward here is written with plain tfjs ops (no in-place disposal as in model/ops.ts), so
 * tf.grad can replay it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BgeM3 } from '../../m3.js';
import type { LexicalWeights } from '../../scores.js';
import { batchLexicalWeights, unusedTokenIds } from '../../heads/sparse.js';
import type { Columns, HeadConfig, HeadInput, TrainableHead } from './head.js';

export type TokenActivation = 'relu' | 'log1p';

/** The union of the non-special ids in `rows`, in first-seen order. */
export function inputIdColumns(rows: readonly (readonly number[])[], special: ReadonlySet<number>): Columns {
  const index = new Map<number, number>();
  for (const r of rows) for (const id of r) if (!special.has(id) && !index.has(id)) index.set(id, index.size);
  return { ids: Int32Array.from(index.keys()), column: (id) => index.get(id) };
}

export class LinearTokenHead implements TrainableHead {
  readonly needsHidden = true;
  readonly space = 'input-ids';
  readonly weight: tf.Variable<tf.Rank.R2>; // [1, H], as sparse_linear.weight
  readonly bias: tf.Variable<tf.Rank.R1>; // [1]
  private readonly special: ReadonlySet<number>;

  /** Starts from the model's own `sparse_linear` (copied into variables), or from `init`. */
  constructor(
    readonly name: string,
    private readonly model: BgeM3,
    private readonly activation: TokenActivation,
    readonly layer?: number,
    init?: { weight: tf.Tensor; bias: tf.Tensor },
  ) {
    const H = model.config.hidden_size;
    const w = init?.weight ?? model.params.sparse_linear.weight;
    const b = init?.bias ?? model.params.sparse_linear.bias;
    if (!tf.util.arraysEqual(w.shape, [1, H]) || !tf.util.arraysEqual(b.shape, [1])) {
      throw new Error(`head '${name}': weight must be [1, ${H}] and bias [1], got [${w.shape}] and [${b.shape}]`);
    }
    // tidy frees the casts; variables hold their own reference to the data.
    this.weight = tf.tidy(() => tf.variable(tf.cast(w, 'float32') as tf.Tensor2D, true));
    this.bias = tf.tidy(() => tf.variable(tf.cast(b, 'float32') as tf.Tensor1D, true));
    this.special = unusedTokenIds(model.tokenizer);
  }

  get trainable(): tf.Variable[] {
    return [this.weight, this.bias];
  }

  get config(): HeadConfig {
    return {
      head: this.name, ...(this.layer === undefined ? {} : { layer: this.layer }),
      hiddenSize: this.model.config.hidden_size, vocabSize: this.model.config.vocab_size,
    };
  }

  namedTensors(): Record<string, tf.Tensor> {
    return { 'sparse_linear.weight': this.weight, 'sparse_linear.bias': this.bias };
  }

  /** act(h·W_lexᵀ + b) per position: [B, T, H] -> [B, T]. */
  private act(hidden: tf.Tensor3D): tf.Tensor2D {
    const s = tf.add(tf.sum(tf.mul(hidden, tf.reshape(this.weight, [-1])), -1), this.bias) as tf.Tensor2D; // [B, T]
    const r = tf.relu(s);
    return this.activation === 'relu' ? r : tf.log1p(r);
  }

  tokenWeights(hidden: tf.Tensor3D, inputIds: readonly (readonly number[])[]): tf.Tensor2D {
    return tf.tidy(() => tf.mul(this.act(hidden), paddingMask(inputIds, hidden.shape[1])));
  }

  columns(inputIds: readonly (readonly number[])[]): Columns {
    return inputIdColumns(inputIds, this.special);
  }

  represent(hidden: tf.Tensor3D, inputIds: readonly (readonly number[])[], columns: Columns): tf.Tensor2D {
    const [B, T] = hidden.shape;
    const C = columns.ids.length;
    const onehot = new Float32Array(B * T * C); // [B, T, C]
    inputIds.forEach((ids, b) => ids.forEach((id, t) => {
      const c = columns.column(id);
      if (c !== undefined && !this.special.has(id)) onehot[(b * T + t) * C + c] = 1;
    }));
    const w = this.act(hidden); // [B, T]
    return tf.max(tf.mul(tf.expandDims(w, 2), tf.tensor3d(onehot, [B, T, C])), 1) as tf.Tensor2D; // [B, C]
  }

  async weigh(input: HeadInput): Promise<LexicalWeights[]> {
    if (!input.hidden) throw new Error(`sparse head '${this.name}' needs hidden states`);
    const [, T] = input.hidden.shape;
    const w = tf.tidy(() => this.act(input.hidden!)); // [B, T]
    try {
      const data = (await w.data()) as Float32Array;
      return batchLexicalWeights(input.inputIds, data, T, this.special);
    } finally {
      w.dispose();
    }
  }

  dispose(): void {
    this.weight.dispose();
    this.bias.dispose();
  }
}

/** 1 at each row's real positions, 0 at padding: [B, T]. */
export function paddingMask(inputIds: readonly (readonly number[])[], T: number): tf.Tensor2D {
  const m = new Float32Array(inputIds.length * T);
  inputIds.forEach((ids, b) => m.fill(1, b * T, b * T + Math.min(ids.length, T)));
  return tf.tensor2d(m, [inputIds.length, T]);
}
