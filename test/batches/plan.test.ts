/**
 * encode's batch planner (src/batches.ts), shared with the lab: every text in exactly one batch,
 * within the row and token limits, longest first, and padded tokens within MAX_PADDING_RATIO × the
 * real ones on mixed lengths. The waste on a mixed set is printed.
 */
import { describe, expect, it } from 'vitest';
import { ENCODE_LIMITS, MAX_PADDING_RATIO, planBatches, planTokens, type BatchLimits } from '../../src/batches.js';
import { mulberry32 } from '../../src/rng.js';

function checkPlan(lengths: number[], limits: BatchLimits = ENCODE_LIMITS): number[][] {
  const plan = planBatches(lengths, limits);
  expect(plan.flat().sort((a, b) => a - b)).toEqual(lengths.map((_, i) => i)); // each text once
  let prevLongest = Infinity;
  for (const b of plan) {
    const ls = b.map((i) => lengths[i]!);
    const T = Math.max(...ls);
    expect(T).toBeLessThanOrEqual(prevLongest); // longest first
    prevLongest = Math.min(...ls);
    expect(b.length).toBeLessThanOrEqual(limits.batchSize);
    if (b.length > 1) expect(b.length * T).toBeLessThanOrEqual(limits.maxTokensPerBatch);
    expect(b.length * T).toBeLessThanOrEqual(MAX_PADDING_RATIO * ls.reduce((a, x) => a + x, 0) + 1e-9);
  }
  return plan;
}

describe('planBatches', () => {
  it("16, 130, 512 and 2,048 tokens: not one 4 × 2,048 batch", () => {
    const lengths = [16, 130, 512, 2048];
    const plan = checkPlan(lengths);
    const { padded, real } = planTokens(lengths, plan);
    console.log(`16/130/512/2048: ${plan.length} batches, padded ${padded} / real ${real} = ${(padded / real).toFixed(2)}×`);
    expect(plan[0]).toEqual([3]);
    expect(padded).toBeLessThanOrEqual(MAX_PADDING_RATIO * real);
  });

  it('mixed calls (200 calls of 2 … 40 texts, log-uniform 5 … 8,192 tokens) pad within 1.3× their real tokens', () => {
    const rand = mulberry32(19);
    let padded = 0;
    let real = 0;
    for (let call = 0; call < 200; call++) {
      const n = 2 + Math.floor(rand() * 39);
      const lengths = Array.from({ length: n }, () => Math.round(Math.exp(Math.log(5) + rand() * Math.log(8192 / 5))));
      const t = planTokens(lengths, checkPlan(lengths));
      padded += t.padded;
      real += t.real;
    }
    console.log(`mixed calls: padded ${padded} / real ${real} = ${(padded / real).toFixed(3)}×`);
    expect(padded / real).toBeLessThanOrEqual(MAX_PADDING_RATIO);
  });

  it('equal lengths fill batches to the limits; other limits are honoured', () => {
    expect(checkPlan(new Array(40).fill(100)).map((b) => b.length)).toEqual([16, 16, 8]);
    expect(checkPlan(new Array(10).fill(1000)).map((b) => b.length)).toEqual([8, 2]);
    expect(checkPlan([9000, 5, 5], { batchSize: 4, maxTokensPerBatch: 8192 })).toEqual([[0], [1, 2]]); // a long text runs alone
    expect(checkPlan([7, 7, 7, 7, 7], { batchSize: 2, maxTokensPerBatch: 100 }).map((b) => b.length)).toEqual([2, 2, 1]);
    expect(planBatches([])).toEqual([]);
  });
});
