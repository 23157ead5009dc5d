/**
 * How `BgeM3.encode` groups texts into forward passes: longest first (as FlagEmbedding), each batch
 * taking texts while it stays within `batchSize` rows and `maxTokensPerBatch` tokens (rows × padded
 * length) and its padded tokens stay within `MAX_PADDING_RATIO` × its real ones; a longer single
 * text still runs alone. A text's outputs are reproduced bit for bit only by running it in the same
 * batch, so the lab (src/lab/) plans its passes with this same function and these same limits.
 */
/** A right-padded batch of token ids. */
export interface Batch {
  readonly inputIds: readonly (readonly number[])[]; // B rows of T ids (padded with pad_token_id)
  readonly attentionMask: readonly (readonly number[])[]; // 1 real, 0 padding
}

/** Pads token-id rows on the right to the longest row. */
export function padBatch(rows: readonly (readonly number[])[], padId: number): Batch {
  const T = Math.max(...rows.map((r) => r.length));
  return {
    inputIds: rows.map((r) => [...r, ...new Array<number>(T - r.length).fill(padId)]),
    attentionMask: rows.map((r) => [...new Array<number>(r.length).fill(1), ...new Array<number>(T - r.length).fill(0)]),
  };
}

export interface BatchLimits {
  readonly batchSize: number;
  readonly maxTokensPerBatch: number;
}

/** encode's limits when none are given (FlagEmbedding's batch size; the lab's passes default to them too). */
export const ENCODE_LIMITS: BatchLimits = { batchSize: 16, maxTokensPerBatch: 8192 };

/**
 * A batch stops taking shorter texts once its padded tokens would exceed this many times its real
 * ones: padding costs the FLOPs of real tokens (and attention over the longest text's length).
 */
export const MAX_PADDING_RATIO = 1.3;

/** Text indices per batch, in run order. `lengths[i]` is text i's token count. */
export function planBatches(lengths: readonly number[], limits: BatchLimits = ENCODE_LIMITS): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const batches: number[][] = [];
  for (let start = 0; start < order.length;) {
    const T = lengths[order[start]!]!; // the batch's padded length (its longest text)
    const most = Math.max(1, Math.min(limits.batchSize, Math.floor(limits.maxTokensPerBatch / T), order.length - start));
    let n = 1;
    let real = T;
    while (n < most) {
      const next = lengths[order[start + n]!]!;
      if ((n + 1) * T > MAX_PADDING_RATIO * (real + next)) break; // the shorter texts start a batch of their own
      real += next;
      n++;
    }
    batches.push(order.slice(start, start + n));
    start += n;
  }
  return batches;
}

/** Padded and real tokens of a plan: what the forward passes compute and what the texts hold. */
export function planTokens(lengths: readonly number[], plan: readonly (readonly number[])[]): { padded: number; real: number } {
  let padded = 0;
  let real = 0;
  for (const b of plan) {
    const ls = b.map((i) => lengths[i]!);
    padded += ls.length * Math.max(...ls);
    real += ls.reduce((a, x) => a + x, 0);
  }
  return { padded, real };
}
