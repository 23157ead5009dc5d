/** The activations `BgeM3.runWithCache` kept, by name. */
import type * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '../batches.js';
import { checkActivationName, type ActivationName } from './names.js';

/** Activations cached by `runWithCache`, with the batch axis in input order (right-padded). */
export class ActivationCache {
  constructor(
    private readonly tensors: Map<ActivationName, tf.Tensor>,
    /** The padded batch the activations were computed on. */
    readonly batch: Batch,
    private readonly layers: number,
  ) {}

  names(): ActivationName[] {
    return [...this.tensors.keys()];
  }

  has(name: ActivationName): boolean {
    return this.tensors.has(name);
  }

  /** The cached activation; an unknown name lists close matches, an uncached one says so. */
  get(name: ActivationName): tf.Tensor {
    checkActivationName(name, this.layers);
    const t = this.tensors.get(name);
    if (!t) throw new Error(`activation '${name}' was not cached (the names filter did not select it)`);
    return t;
  }

  dispose(): void {
    for (const t of this.tensors.values()) t.dispose();
    this.tensors.clear();
  }
}
