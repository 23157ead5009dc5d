/**
 * Where training and evaluation read hidden states from: a text id -> its token ids and the hidden
 * state the head reads, [T, H] on the host. The on-disk cache (`openHiddenCache`) is one source;
 * `memoryHiddenSource` computes a small set once, in memory, with encode's own batching (so each
 * text's hidden states are the ones encode would see, bit for bit).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BgeM3 } from '../m3.js';
import { planBatches, type BatchLimits } from '../batches.js';
import { hiddenStates } from './hidden.js';

export interface HiddenRecord {
  readonly id: string;
  readonly inputIds: readonly number[];
  /** [T, H] row-major, T = inputIds.length. */
  readonly hidden: Float32Array;
}

export interface HiddenSource {
  readonly hiddenSize: number;
  get(id: string): Promise<HiddenRecord>;
}

/**
 * Runs every text once (longest first, encode's limits by default) and keeps `hidden_states[layer]`
 * per text on the host. Memory: Σ T·H floats; for corpora that outgrow it use the on-disk cache.
 */
export async function memoryHiddenSource(
  model: BgeM3, texts: ReadonlyMap<string, readonly number[]>, layer: number = model.config.num_hidden_layers,
  limits: BatchLimits = { batchSize: 16, maxTokensPerBatch: 8192 },
): Promise<HiddenSource> {
  const H = model.config.hidden_size;
  const ids = [...texts.keys()];
  const store = new Map<string, HiddenRecord>();
  for (const members of planBatches(ids.map((id) => texts.get(id)!.length), limits)) {
    const rows = members.map((i) => texts.get(ids[i]!)!);
    const h = await hiddenStates(model, rows, layer); // [B, T, H]
    const T = h.shape[1];
    const data = (await h.data()) as Float32Array;
    h.dispose();
    members.forEach((i, b) => {
      const n = rows[b]!.length;
      store.set(ids[i]!, { id: ids[i]!, inputIds: rows[b]!, hidden: data.slice(b * T * H, (b * T + n) * H) });
    });
  }
  return {
    hiddenSize: H,
    async get(id) {
      const r = store.get(id);
      if (!r) throw new Error(`no hidden states for text id '${id}'`);
      return r;
    },
  };
}

/** Right-pads records into one batch: hidden [B, T, H] (zeros at padding) and the ids per row. */
export function padHidden(records: readonly HiddenRecord[], H: number): { hidden: tf.Tensor3D; inputIds: number[][] } {
  const T = Math.max(...records.map((r) => r.inputIds.length));
  const buf = new Float32Array(records.length * T * H);
  records.forEach((r, b) => {
    if (r.hidden.length !== r.inputIds.length * H) {
      throw new Error(`hidden states of '${r.id}' hold ${r.hidden.length} floats, expected ${r.inputIds.length} tokens × ${H}`);
    }
    buf.set(r.hidden, b * T * H);
  });
  return { hidden: tf.tensor3d(buf, [records.length, T, H]), inputIds: records.map((r) => [...r.inputIds]) };
}
