/**
 * `splade`: SPLADE's vocabulary head on BGE-M3's hidden states. Per position
 *
 *   u = LayerNorm(GELU(W_t·h + b_t))              the MLM transform, [H]
 *   logits = E·u + b_dec                           decoder tied to the word embeddings E [V, H]
 *   w_v = max over real positions of log(1 + relu(logits_v))
 *
 * so a text can weigh vocabulary ids it does not contain (expansion). Special ids are dropped;
 * `topK` keeps the k largest weights per text at inference (training uses all of them).
 *
 * Initialisation: BGE-M3 ships no MLM head, so the transform starts as the identity (W_t = I,
 * b_t = 0, LayerNorm weight 1, bias 0) and b_dec = 0. That start is deterministic and says
 * something readable (how close the normalised hidden state is to each word embedding) instead of
 * the noise of a random transform; the identity also breaks no symmetry that training would need.
 * The decoder is tied to the model's word embeddings and stays frozen: it is not copied (250002 ×
 * 1024 floats for BGE-M3) and the head's saved size is H² + 4H + V floats.
 *
 * Memory: the logits of one position are V floats, so inference runs the positions of a text in
 * chunks of `chunkPositions` (default: as many as fit in 2^24 logits) and keeps a running max.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BgeM3 } from '../../m3.js';
import type { LexicalWeights } from '../../scores.js';
import type { Columns, HeadConfig, HeadInput, TrainableHead } from './head.js';
import { unusedTokenIds } from '../../heads/sparse.js';

export interface SpladeInit {
  readonly dense_weight: tf.Tensor; // [H, H], [out, in]
  readonly dense_bias: tf.Tensor; // [H]
  readonly ln_weight: tf.Tensor; // [H]
  readonly ln_bias: tf.Tensor; // [H]
  readonly decoder_bias: tf.Tensor; // [V]
}

/** Saved tensor names (`head.safetensors`), in the order of `trainable`. */
export const SPLADE_TENSORS = [
  'transform.dense.weight', 'transform.dense.bias', 'transform.LayerNorm.weight', 'transform.LayerNorm.bias', 'decoder.bias',
] as const;

const LOGITS_PER_CHUNK = 1 << 24;

export class SpladeHead implements TrainableHead {
  readonly name = 'splade';
  readonly needsHidden = true;
  readonly space = 'vocab';
  readonly trainable: tf.Variable[];
  private readonly special: ReadonlySet<number>;
  /** 1 for ordinary vocabulary ids, 0 for special ones: [V]. */
  private readonly keep: tf.Tensor1D;
  private readonly allColumns: Columns;

  constructor(
    private readonly model: BgeM3,
    readonly layer?: number,
    readonly topK?: number,
    init?: SpladeInit,
    private readonly chunkPositions = Math.max(1, Math.floor(LOGITS_PER_CHUNK / model.config.vocab_size)),
  ) {
    const H = model.config.hidden_size;
    const V = model.config.vocab_size;
    if (topK !== undefined && (!Number.isInteger(topK) || topK < 1)) throw new RangeError(`splade topK must be an integer >= 1, got ${JSON.stringify(topK)}`);
    const start: SpladeInit = init ?? {
      dense_weight: tf.eye(H), dense_bias: tf.zeros([H]), ln_weight: tf.ones([H]), ln_bias: tf.zeros([H]), decoder_bias: tf.zeros([V]),
    };
    const shapes = [[H, H], [H], [H], [H], [V]];
    const given = [start.dense_weight, start.dense_bias, start.ln_weight, start.ln_bias, start.decoder_bias];
    given.forEach((t, i) => {
      if (!tf.util.arraysEqual(t.shape, shapes[i]!)) throw new Error(`splade head: '${SPLADE_TENSORS[i]}' must be [${shapes[i]}], got [${t.shape}]`);
    });
    this.trainable = given.map((t) => tf.tidy(() => tf.variable(tf.cast(t, 'float32'), true)));
    if (!init) tf.dispose(given);
    this.special = unusedTokenIds(model.tokenizer);
    const keep = new Float32Array(V).fill(1);
    for (const id of this.special) if (id < V) keep[id] = 0;
    this.keep = tf.tensor1d(keep);
    const ids = Int32Array.from({ length: V }, (_, i) => i);
    this.allColumns = { ids, column: (id) => (Number.isInteger(id) && id >= 0 && id < V ? id : undefined) };
  }

  get config(): HeadConfig {
    return {
      head: this.name, ...(this.layer === undefined ? {} : { layer: this.layer }), ...(this.topK === undefined ? {} : { topK: this.topK }),
      hiddenSize: this.model.config.hidden_size, vocabSize: this.model.config.vocab_size,
    };
  }

  namedTensors(): Record<string, tf.Tensor> {
    return Object.fromEntries(SPLADE_TENSORS.map((n, i) => [n, this.trainable[i]!]));
  }

  /** The MLM transform, x [n, H] -> u [n, H]. */
  private transform(x: tf.Tensor2D): tf.Tensor2D {
    const [W, b, g, beta] = this.trainable as [tf.Variable, tf.Variable, tf.Variable, tf.Variable];
    const y = tf.add(tf.matMul(x, W, false, true), b); // x·Wᵀ + b: [n, H]
    const gelu = tf.mul(tf.mul(y, 0.5), tf.add(tf.erf(tf.mul(y, Math.SQRT1_2)), 1)); // exact GELU
    const centred = tf.sub(gelu, tf.mean(gelu, -1, true));
    const variance = tf.mean(tf.square(centred), -1, true);
    const normed = tf.mul(centred, tf.rsqrt(tf.add(variance, this.model.config.layer_norm_eps)));
    return tf.add(tf.mul(normed, g), beta) as tf.Tensor2D;
  }

  /** log(1 + relu(E·u + b_dec)) for positions x [n, H] -> [V, n] (E·uᵀ: the plain matMul wasm runs fast). */
  private vocabWeights(x: tf.Tensor2D): tf.Tensor2D {
    const E = this.model.params.embeddings.word_embeddings; // [V, H]
    const u = this.transform(x);
    const logits = tf.add(tf.matMul(E, tf.transpose(u)), tf.expandDims(this.trainable[4]!, 1)); // [V, n]
    return tf.log1p(tf.relu(logits)) as tf.Tensor2D;
  }

  columns(): Columns {
    return this.allColumns;
  }

  represent(hidden: tf.Tensor3D, inputIds: readonly (readonly number[])[], columns: Columns): tf.Tensor2D {
    if (columns.ids.length !== this.model.config.vocab_size) throw new Error('splade head: represent takes the whole vocabulary as columns (use head.columns())');
    const H = hidden.shape[2];
    const rows = inputIds.map((ids, b) => {
      const x = tf.reshape(tf.slice(hidden, [b, 0, 0], [1, ids.length, H]), [ids.length, H]) as tf.Tensor2D; // real positions only
      return tf.max(this.vocabWeights(x), 1); // [V]
    });
    return tf.mul(tf.stack(rows), this.keep) as tf.Tensor2D; // [B, V], special ids 0
  }

  tokenWeights(hidden: tf.Tensor3D, inputIds: readonly (readonly number[])[]): tf.Tensor2D {
    const [B, T, H] = hidden.shape;
    return tf.tidy(() => {
      const E = this.model.params.embeddings.word_embeddings;
      const padded = inputIds.flatMap((ids) => [...ids, ...new Array<number>(T - ids.length).fill(this.model.tokenizer.padId)]);
      const own = tf.tensor1d(padded, 'int32');
      const u = this.transform(tf.reshape(hidden, [B * T, H]) as tf.Tensor2D); // [B·T, H]
      const logit = tf.add(tf.sum(tf.mul(u, tf.gather(E, own)), -1), tf.gather(this.trainable[4]!, own)); // [B·T]
      const mask = new Float32Array(B * T);
      inputIds.forEach((ids, b) => mask.fill(1, b * T, b * T + ids.length));
      return tf.reshape(tf.mul(tf.log1p(tf.relu(logit)), tf.tensor1d(mask)), [B, T]) as tf.Tensor2D;
    });
  }

  async weigh(input: HeadInput): Promise<LexicalWeights[]> {
    if (!input.hidden) throw new Error(`sparse head '${this.name}' needs hidden states`);
    const H = input.hidden.shape[2];
    const out: LexicalWeights[] = [];
    for (let b = 0; b < input.inputIds.length; b++) {
      const n = input.inputIds[b]!.length;
      let best: tf.Tensor1D | undefined; // running max over position chunks: [V]
      for (let s = 0; s < n; s += this.chunkPositions) {
        const m = Math.min(this.chunkPositions, n - s);
        const chunkMax = tf.tidy(() => {
          const x = tf.reshape(tf.slice(input.hidden!, [b, s, 0], [1, m, H]), [m, H]) as tf.Tensor2D;
          const w = tf.max(this.vocabWeights(x), 1) as tf.Tensor1D;
          return best ? tf.maximum(best, w) : w;
        });
        best?.dispose();
        best = chunkMax as tf.Tensor1D;
      }
      const data = (await best!.data()) as Float32Array;
      best!.dispose();
      out.push(this.sparsify(data));
    }
    return out;
  }

  /** Weights > 0 of ordinary ids, the `topK` largest if set (ties: the lower id first). */
  private sparsify(w: Float32Array): LexicalWeights {
    let ids: number[] = [];
    for (let v = 0; v < w.length; v++) if (w[v]! > 0 && !this.special.has(v)) ids.push(v);
    if (this.topK !== undefined && ids.length > this.topK) {
      ids.sort((a, b) => w[b]! - w[a]! || a - b);
      ids = ids.slice(0, this.topK).sort((a, b) => a - b);
    }
    const r: LexicalWeights = {};
    for (const v of ids) r[String(v)] = w[v]!;
    return r;
  }

  dispose(): void {
    tf.dispose([...this.trainable, this.keep]);
  }
}
