/**
 * Hidden states for the lab: one right-padded batch through the encoder, keeping only the layer a
 * head reads (`hidden_states[layer]`: 0 = embeddings, i + 1 = `encoder.layer.<i>.hook_out`).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ActivationName } from '../hooks/names.js';
import type { BgeM3 } from '../m3.js';

/** The activation name of Hugging Face's `hidden_states[layer]` for a model with `layers` layers. */
export function hiddenStateName(layer: number, layers: number): ActivationName {
  if (!Number.isInteger(layer) || layer < 0 || layer > layers) {
    throw new RangeError(`layer must be an integer in [0, ${layers}] (0 = embeddings, ${layers} = last layer), got ${JSON.stringify(layer)}`);
  }
  return layer === 0 ? 'embeddings.hook_out' : `encoder.layer.${layer - 1}.hook_out`;
}

/**
 * Runs `inputIds` (each `<s> … </s>`) as one right-padded batch and returns `hidden_states[layer]`
 * [B, T, H] (default: the last layer). The caller disposes the tensor.
 */
export async function hiddenStates(
  model: BgeM3, inputIds: readonly (readonly number[])[], layer: number = model.config.num_hidden_layers,
): Promise<tf.Tensor3D> {
  const name = hiddenStateName(layer, model.config.num_hidden_layers);
  const { cache } = await model.runWithCache({ inputIds }, { names: [name] });
  try {
    const h = cache.get(name) as tf.Tensor3D;
    const kept = h.clone();
    return kept;
  } finally {
    cache.dispose();
  }
}

/** `hiddenStates` read to the host: the values [B, T, H] row-major and the padded length T (the tensor is disposed). */
export async function hiddenStatesData(
  model: BgeM3, inputIds: readonly (readonly number[])[], layer?: number,
): Promise<{ data: Float32Array; T: number }> {
  const h = await hiddenStates(model, inputIds, layer);
  try {
    return { data: (await h.data()) as Float32Array, T: h.shape[1] };
  } finally {
    h.dispose();
  }
}
