/**
 * How `BgeM3.encode` groups texts into forward passes: longest first (as FlagEmbedding), each batch
 * taking texts while it stays within `batchSize` rows and `maxTokensPerBatch` tokens (rows × padded
 * length); a longer single text still runs alone. A text's outputs are reproduced bit for bit only
 * by running it in the same batch, so the lab (src/lab/) plans its passes with this same function.
 */
export interface BatchLimits {
  readonly batchSize: number;
  readonly maxTokensPerBatch: number;
}

/** encode's limits when none are given (FlagEmbedding's batch size; the lab's passes default to them too). */
export const ENCODE_LIMITS: BatchLimits = { batchSize: 16, maxTokensPerBatch: 8192 };

/** Text indices per batch, in run order. `lengths[i]` is text i's token count. */
export function planBatches(lengths: readonly number[], limits: BatchLimits): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const batches: number[][] = [];
  for (let start = 0; start < order.length;) {
    const T = lengths[order[start]!]!; // the batch's padded length (its longest text)
    const n = Math.max(1, Math.min(limits.batchSize, Math.floor(limits.maxTokensPerBatch / T), order.length - start));
    batches.push(order.slice(start, start + n));
    start += n;
  }
  return batches;
}
