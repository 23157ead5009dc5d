/**
 * The model's parameters as tfjs tensors, in a tree that equals the Hugging Face weight-key tree:
 * `params.encoder.layer[3].attention.self.query` holds `encoder.layer.3.attention.self.query.*`.
 *
 * One layout change is made at load, for the kernels: a Linear's `[out, in]` weight is kept
 * transposed, as `weightT` `[in, out]`, because the wasm backend's matMul with transposeB is ~10×
 * slower (see PERF notes). The name and values are unchanged; `weightT` is exactly `weightᵀ`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { XLMRobertaConfig } from '../config.js';
import type { HostTensor } from '../weights/types.js';

export interface Linear { readonly weightT: tf.Tensor2D; readonly bias: tf.Tensor1D }
export interface LayerNormParams { readonly weight: tf.Tensor1D; readonly bias: tf.Tensor1D }

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

/**
 * Builds the parameter tree from host tensors keyed by full weight name (already shape-checked
 * against `expectedShapes`). `take` hands over one tensor at a time so the caller can free host
 * memory as it goes.
 */
export async function buildParams(
  c: XLMRobertaConfig,
  take: (name: string) => Promise<HostTensor>,
): Promise<M3Params> {
  const created: tf.Tensor[] = [];
  const t = async <R extends tf.Rank>(name: string): Promise<tf.Tensor<R>> => {
    // Shapes were checked against config.json by the snapshot loader.
    const h = await take(name);
    const x = tf.tensor(h.data, [...h.shape], 'float32') as unknown as tf.Tensor<R>;
    created.push(x);
    return x;
  };
  const linear = async (p: string): Promise<Linear> => {
    const w = await t<tf.Rank.R2>(`${p}.weight`);
    const weightT = tf.transpose(w) as tf.Tensor2D; // [in, out]
    created.push(weightT);
    w.dispose();
    return { weightT, bias: await t<tf.Rank.R1>(`${p}.bias`) };
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
    return {
      embeddings,
      encoder: { layer },
      colbert_linear: await linear('colbert_linear'),
      sparse_linear: await linear('sparse_linear'),
    };
  } catch (e) {
    for (const x of created) x.dispose();
    throw e;
  }
}

/** Frees every tensor of a parameter tree. */
export function disposeParams(p: M3Params): void {
  const walk = (o: unknown): void => {
    if (o instanceof tf.Tensor) o.dispose();
    else if (o && typeof o === 'object') for (const v of Object.values(o)) walk(v);
  };
  walk(p);
}
