/**
 * The model's parameters as tfjs tensors, in a tree that equals the Hugging Face weight-key tree:
 * `params.encoder.layer[3].attention.self.query` holds `encoder.layer.3.attention.self.query.*`.
 *
 * Every tensor keeps its checkpoint layout and values: a Linear's weight is `[out, in]` as stored.
 * The forward multiplies `weight · xᵀ` (see `linear` in ops.ts), which runs on the wasm backend's
 * fast XNNPACK path without any per-call or load-time transpose of the weights, and without the
 * packed copy of every weight that `x · weightᵀ` would make the backend keep.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { XLMRobertaConfig } from '../config.js';
import { openDirectReader } from '../perf/heap-load.js';
import type { HostTensor } from '../weights/types.js';

/** A Linear layer: y = x·weightᵀ + bias. */
export interface Linear {
  readonly weight: tf.Tensor2D; // [out, in], as stored
  readonly bias: tf.Tensor1D; // [out]
  /** weightᵀ ([in, out]), made on first read and kept; the forward does not use it. */
  readonly weightT: tf.Tensor2D;
}
export interface LayerNormParams { readonly weight: tf.Tensor1D; readonly bias: tf.Tensor1D }

/** Tensors made on first read of a derived view, kept past any tf.tidy, freed with the parameters. */
abstract class Derived {
  private readonly made = new Map<string, tf.Tensor>();

  protected derive<T extends tf.Tensor>(key: string, make: () => T): T {
    let t = this.made.get(key);
    if (!t) {
      t = tf.keep(make());
      this.made.set(key, t);
    }
    return t as T;
  }

  protected disposeDerived(): void {
    tf.dispose([...this.made.values()]);
    this.made.clear();
  }
}

/** A Linear holding its checkpoint tensors. */
export class DenseLinear extends Derived implements Linear {
  constructor(readonly weight: tf.Tensor2D, readonly bias: tf.Tensor1D) {
    super();
  }

  get weightT(): tf.Tensor2D {
    return this.derive('weightT', () => tf.transpose(this.weight));
  }

  dispose(): void {
    tf.dispose([this.weight, this.bias]);
    this.disposeDerived();
  }
}

export interface EmbeddingsParams {
  readonly word_embeddings: tf.Tensor2D; // [vocab, H]
  readonly position_embeddings: tf.Tensor2D; // [max_pos, H]
  readonly token_type_embeddings: tf.Tensor2D; // [type_vocab, H]
  readonly LayerNorm: LayerNormParams;
}

export interface LayerParams {
  readonly attention: {
    readonly self: { readonly query: Linear; readonly key: Linear; readonly value: Linear };
    readonly output: { readonly dense: Linear; readonly LayerNorm: LayerNormParams };
  };
  readonly intermediate: { readonly dense: Linear };
  readonly output: { readonly dense: Linear; readonly LayerNorm: LayerNormParams };
}

export interface M3Params {
  readonly embeddings: EmbeddingsParams;
  readonly encoder: { readonly layer: readonly LayerParams[] };
  readonly colbert_linear: Linear; // [H] -> [C]
  readonly sparse_linear: Linear; // [H] -> [1]
}

/** Name and expected shape of every tensor the model reads, in key order. */
export function expectedShapes(c: XLMRobertaConfig, colbertDim: number): Map<string, number[]> {
  const H = c.hidden_size;
  const I = c.intermediate_size;
  const m = new Map<string, number[]>([
    ['embeddings.word_embeddings.weight', [c.vocab_size, H]],
    ['embeddings.position_embeddings.weight', [c.max_position_embeddings, H]],
    ['embeddings.token_type_embeddings.weight', [c.type_vocab_size, H]],
    ['embeddings.LayerNorm.weight', [H]],
    ['embeddings.LayerNorm.bias', [H]],
  ]);
  const linear = (p: string, out: number, inp: number): void => {
    m.set(`${p}.weight`, [out, inp]);
    m.set(`${p}.bias`, [out]);
  };
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `encoder.layer.${i}`;
    linear(`${p}.attention.self.query`, H, H);
    linear(`${p}.attention.self.key`, H, H);
    linear(`${p}.attention.self.value`, H, H);
    linear(`${p}.attention.output.dense`, H, H);
    m.set(`${p}.attention.output.LayerNorm.weight`, [H]);
    m.set(`${p}.attention.output.LayerNorm.bias`, [H]);
    linear(`${p}.intermediate.dense`, I, H);
    linear(`${p}.output.dense`, H, I);
    m.set(`${p}.output.LayerNorm.weight`, [H]);
    m.set(`${p}.output.LayerNorm.bias`, [H]);
  }
  linear('colbert_linear', colbertDim, H);
  linear('sparse_linear', 1, H);
  return m;
}

/** The files of a snapshot, by part (`SnapshotWeights.files`): lets F32 safetensors load straight into backend memory. */
export interface ParamFiles {
  readonly encoder: string;
  readonly colbert_linear: string;
  readonly sparse_linear: string;
}

/**
 * Builds the parameter tree from host tensors keyed by full weight name (already shape-checked
 * against `expectedShapes`). `take` hands over one tensor at a time so the caller can free host
 * memory as it goes. With `files`, F32 safetensors are read straight into the wasm heap instead
 * (see perf/heap-load.ts: all tensors allocated first, then filled by parallel reads); `take` serves
 * everything else.
 */
export async function buildParams(
  c: XLMRobertaConfig,
  take: (name: string) => Promise<HostTensor>,
  files?: ParamFiles,
): Promise<M3Params> {
  const created: Array<tf.Tensor | DenseLinear> = [];
  const direct = files ? openDirectReader() : undefined;
  const where = (name: string): [string, string] => {
    for (const head of ['colbert_linear', 'sparse_linear'] as const) {
      if (name.startsWith(`${head}.`)) return [files![head], name.slice(head.length + 1)];
    }
    return [files!.encoder, name];
  };
  const t = async <R extends tf.Rank>(name: string): Promise<tf.Tensor<R>> => {
    // Shapes were checked against config.json by the snapshot loader.
    let x = direct ? await direct.alloc(...where(name)) : null;
    if (!x) {
      const h = await take(name);
      x = tf.tensor(h.data, [...h.shape], 'float32');
    }
    created.push(x);
    return x as tf.Tensor<R>;
  };
  const linear = async (p: string): Promise<DenseLinear> => {
    const l = new DenseLinear(await t<tf.Rank.R2>(`${p}.weight`), await t<tf.Rank.R1>(`${p}.bias`));
    created.splice(created.length - 2, 2, l); // the Linear now owns both tensors
    return l;
  };
  const ln = async (p: string): Promise<LayerNormParams> => ({
    weight: await t<tf.Rank.R1>(`${p}.weight`),
    bias: await t<tf.Rank.R1>(`${p}.bias`),
  });
  try {
    const embeddings: EmbeddingsParams = {
      word_embeddings: await t('embeddings.word_embeddings.weight'),
      position_embeddings: await t('embeddings.position_embeddings.weight'),
      token_type_embeddings: await t('embeddings.token_type_embeddings.weight'),
      LayerNorm: await ln('embeddings.LayerNorm'),
    };
    const layer: LayerParams[] = [];
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const p = `encoder.layer.${i}`;
      layer.push({
        attention: {
          self: {
            query: await linear(`${p}.attention.self.query`),
            key: await linear(`${p}.attention.self.key`),
            value: await linear(`${p}.attention.self.value`),
          },
          output: { dense: await linear(`${p}.attention.output.dense`), LayerNorm: await ln(`${p}.attention.output.LayerNorm`) },
        },
        intermediate: { dense: await linear(`${p}.intermediate.dense`) },
        output: { dense: await linear(`${p}.output.dense`), LayerNorm: await ln(`${p}.output.LayerNorm`) },
      });
    }
    const params: M3Params = {
      embeddings,
      encoder: { layer },
      colbert_linear: await linear('colbert_linear'),
      sparse_linear: await linear('sparse_linear'),
    };
    await direct?.finish(); // every tensor is allocated: now read their bytes, several at a time
    return params;
  } catch (e) {
    for (const x of created) x.dispose();
    throw e;
  } finally {
    await direct?.close();
  }
}

/** Frees every tensor of a parameter tree. */
export function disposeParams(p: M3Params): void {
  const walk = (o: unknown): void => {
    if (o instanceof tf.Tensor || o instanceof DenseLinear) o.dispose();
    else if (o && typeof o === 'object') for (const v of Object.values(o)) walk(v);
  };
  walk(p);
}
