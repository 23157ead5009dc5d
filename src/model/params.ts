/**
 * The model's parameters as tfjs tensors, in a tree that equals the Hugging Face weight-key tree:
 * `params.encoder.layer[3].attention.self.query` holds `encoder.layer.3.attention.self.query.*`.
 *
 * The tree is described once, by `describeWeights` below, in the manner of candle's `VarBuilder`:
 * `vb.pp('attention').get('weight', [H, H])` names a tensor by its path and shape. That one
 * description gives the parameter types (`M3Params`), the names and shapes the snapshot loader checks
 * (`expectedShapes`), and the loading itself (`buildParams`).
 *
 * Every tensor keeps its checkpoint layout and values: a Linear's weight is `[out, in]` as stored
 * (the forward multiplies `weight · xᵀ`; see `linear` in ops.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { XLMRobertaConfig } from '../config.js';
import type { HeadPart } from '../weights/checkpoint-files.js';

/** A Linear layer: y = x·weightᵀ + bias. */
export interface Linear {
  readonly weight: tf.Tensor2D; // [out, in], as stored
  readonly bias: tf.Tensor1D; // [out]
}
export interface LayerNormParams { readonly weight: tf.Tensor1D; readonly bias: tf.Tensor1D }

/** Names tensors by path: `pp` descends one module, `get` takes a tensor of that module with its shape. */
export interface VarBuilder {
  pp(module: string): VarBuilder;
  get<R extends tf.Rank>(name: string, shape: number[]): tf.Tensor<R>;
}

const linear = (vb: VarBuilder, out: number, inp: number): Linear => ({
  weight: vb.get('weight', [out, inp]),
  bias: vb.get('bias', [out]),
});

const layerNorm = (vb: VarBuilder, H: number): LayerNormParams => ({ weight: vb.get('weight', [H]), bias: vb.get('bias', [H]) });

/** `encoder.layer.<i>`. */
function layerWeights(vb: VarBuilder, H: number, I: number) {
  return {
    attention: {
      self: {
        query: linear(vb.pp('attention.self.query'), H, H),
        key: linear(vb.pp('attention.self.key'), H, H),
        value: linear(vb.pp('attention.self.value'), H, H),
      },
      output: { dense: linear(vb.pp('attention.output.dense'), H, H), LayerNorm: layerNorm(vb.pp('attention.output.LayerNorm'), H) },
    },
    intermediate: { dense: linear(vb.pp('intermediate.dense'), I, H) },
    output: { dense: linear(vb.pp('output.dense'), H, I), LayerNorm: layerNorm(vb.pp('output.LayerNorm'), H) },
  } as const;
}

/** BGE-M3's weight tree: the XLM-RoBERTa encoder (no pooler) and the ColBERT and sparse heads. */
export function describeWeights(vb: VarBuilder, c: XLMRobertaConfig, colbertDim: number) {
  const H = c.hidden_size;
  const e = vb.pp('embeddings');
  return {
    embeddings: {
      word_embeddings: e.get<tf.Rank.R2>('word_embeddings.weight', [c.vocab_size, H]),
      position_embeddings: e.get<tf.Rank.R2>('position_embeddings.weight', [c.max_position_embeddings, H]),
      token_type_embeddings: e.get<tf.Rank.R2>('token_type_embeddings.weight', [c.type_vocab_size, H]),
      LayerNorm: layerNorm(e.pp('LayerNorm'), H),
    },
    encoder: {
      layer: Array.from({ length: c.num_hidden_layers }, (_, i) => layerWeights(vb.pp(`encoder.layer.${i}`), H, c.intermediate_size)),
    },
    // the heads, each stored in a file of its own (weights/checkpoint-files.ts: HEAD_PARTS)
    colbert_linear: linear(vb.pp('colbert_linear' satisfies HeadPart), colbertDim, H), // [H] -> [C]
    sparse_linear: linear(vb.pp('sparse_linear' satisfies HeadPart), 1, H), // [H] -> [1]
  } as const;
}

export type M3Params = ReturnType<typeof describeWeights>;
export type EmbeddingsParams = M3Params['embeddings'];
export type LayerParams = M3Params['encoder']['layer'][number];

/** A VarBuilder over full names: `at(prefix)` joins module paths with dots. */
function varBuilder(get: (name: string, shape: number[]) => tf.Tensor, prefix = ''): VarBuilder {
  const full = (name: string) => (prefix ? `${prefix}.${name}` : name);
  return {
    pp: (module) => varBuilder(get, full(module)),
    get: <R extends tf.Rank>(name: string, shape: number[]) => get(full(name), shape) as tf.Tensor<R>,
  };
}

/** Name and expected shape of every tensor the model reads, in the tree's order. */
export function expectedShapes(c: XLMRobertaConfig, colbertDim: number): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  // Only the names and shapes are wanted: the tree built with these placeholders is dropped.
  describeWeights(varBuilder((name, shape) => { shapes.set(name, shape); return null as unknown as tf.Tensor; }), c, colbertDim);
  return shapes;
}

/**
 * Where the tensors come from: `tensor` makes one by full name (its values may arrive only when
 * `finish` resolves: runtime/heap-load.ts reads safetensors straight into the wasm heap that way).
 */
export interface WeightSource {
  tensor(name: string): Promise<tf.Tensor>;
  finish?(): Promise<void>;
}

/** Builds the parameter tree, one tensor at a time in the tree's order, each checked against its expected shape. */
export async function buildParams(c: XLMRobertaConfig, colbertDim: number, source: WeightSource): Promise<M3Params> {
  const made = new Map<string, tf.Tensor>();
  try {
    for (const [name, shape] of expectedShapes(c, colbertDim)) {
      const x = await source.tensor(name);
      made.set(name, x);
      if (!tf.util.arraysEqual(x.shape, shape)) throw new Error(`tensor '${name}' has shape [${x.shape}], config.json implies [${shape}]`);
    }
    await source.finish?.();
    return describeWeights(varBuilder((name) => made.get(name)!), c, colbertDim);
  } catch (e) {
    tf.dispose([...made.values()]);
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
