/**
 * Where training and evaluation read hidden states from: a text id -> its token ids and the hidden
 * state the head reads, [T, H] on the host. The on-disk cache (`openHiddenCache`) is one source;
 * `memoryHiddenSource` computes a small set once, in memory, with encode's own batching (so each
 * text's hidden states are the ones encode would see, bit for bit). Given the same texts, layer
 * and limits as a cache, it plans the same batches, so the two give the same states bit for bit.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BgeM3 } from '../m3.js';
import { ENCODE_LIMITS, planBatches, type BatchLimits } from '../batches.js';
import { hiddenStatesData } from './hidden.js';

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
 * Plans every text of `texts` as encode would (longest first, encode's limits by default), runs the
 * batches and keeps `hidden_states[layer]` per text on the host. With `keep`, only the batches
 * holding a text of `keep` run and only those texts are kept: the states are still the ones the
 * whole set's batches give (a text's states depend on the batch it runs in), e.g. the documents
 * training reads out of a whole corpus, as a cache of that corpus holds them. Memory: Σ T·H floats
 * of the kept texts; for corpora that outgrow it use the on-disk cache.
 */
export async function memoryHiddenSource(
  model: BgeM3, texts: ReadonlyMap<string, readonly number[]>, layer: number = model.config.num_hidden_layers,
  limits: BatchLimits = ENCODE_LIMITS, keep?: ReadonlySet<string>,
): Promise<HiddenSource> {
  const H = model.config.hidden_size;
  const ids = [...texts.keys()];
  if (keep) for (const id of keep) if (!texts.has(id)) throw new Error(`memoryHiddenSource: keep names '${id}', which is not among the texts`);
  const store = new Map<string, HiddenRecord>();
  for (const members of planBatches(ids.map((id) => texts.get(id)!.length), limits)) {
    if (keep && !members.some((i) => keep.has(ids[i]!))) continue;
    const rows = members.map((i) => texts.get(ids[i]!)!);
    const { data, T } = await hiddenStatesData(model, rows, layer); // [B, T, H]
    members.forEach((i, b) => {
      if (keep && !keep.has(ids[i]!)) return;
      const n = rows[b]!.length;
      store.set(ids[i]!, { id: ids[i]!, inputIds: rows[b]!, hidden: data.slice(b * T * H, (b * T + n) * H) }); // row b's real tokens, [n, H]
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
