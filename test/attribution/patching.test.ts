/**
 * Attribution patching against real activation patching, head by head, on the three fixture
 * checkpoints: the estimate Σ (a − a′)·∂f/∂a over head j's slice of `attention.self.hook_out` against
 * f(clean) − f(head j patched) measured by `patchHeads` (one `runWithHooks` run per head; the fast
 * forward, so the comparison also crosses formulations). Prints Spearman's ρ, the top-3 overlap and
 * the largest |estimate − effect| per setting.
 *
 * What holds: on tiny-m3 and small-m3 (weights N(0, 0.02)) the model is nearly linear in one head and
 * the estimate equals the effect to a few per cent. On sharp-m3 (peaked attention, GELU in its bend)
 * zero-ablating a head is a large step and the first-order estimate misses by up to ~13 % of the
 * largest effect, yet ranks the heads well (ρ ≥ 0.9). Where it fails: the dense score of a pair sits
 * near its maximum (cosine ≈ 1 on the small-weight checkpoints), where f is flat to first order, so
 * the gradient says ~0 and the effects are second order (and at float32 noise level): there only a
 * positive correlation on sharp-m3 is asserted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3 } from '../../src/m3.js';
import { patchHeads } from '../../src/attribution/patching.js';
import { spearman, topK, topKOverlap } from '../../src/attribution/rank.js';
import type { AttributeOptions } from '../../src/attribution/attribute.js';
import { CHECKPOINTS, checkpointDir } from '../helpers/fixtures.js';

const TEXT = 'BM25 is a bag-of-words retrieval function that ranks documents';
const PAIR: [string, string] = ['What is BGE M3?', 'BGE M3 is an embedding model supporting dense retrieval, lexical matching and multi-vector interaction.'];
type Case = { name: string; text: string | [string, string]; opts: AttributeOptions; rho: number; relErr?: number };
const CASES: Case[] = [
  { name: 'weight of ▁retrieval, zero-ablation', text: TEXT, opts: { target: 'retrieval' }, rho: 0.9 },
  { name: 'weight of ▁retrieval, corrupt ▁B M → ▁X Y', text: TEXT, opts: { target: 'retrieval', baseline: { corrupt: TEXT.replace('BM', 'XY') } }, rho: 0.9 },
  { name: 'weight of ▁Par, corrupt France → Italy', text: 'The capital of France is Paris', opts: { target: '▁Par', baseline: { corrupt: 'The capital of Italy is Paris' } }, rho: 0.9 },
  { name: 'lexical score, zero-ablation', text: PAIR, opts: { target: 'lexical' }, rho: 0.9 },
  { name: 'lexical score, corrupt BGE → the', text: PAIR, opts: { target: 'lexical', baseline: { corrupt: ['What is the M3?', PAIR[1]] } }, rho: 0.9 },
  { name: 'dense score, zero-ablation', text: PAIR, opts: { target: 'dense' }, rho: 0 },
];

describe.each(CHECKPOINTS)('attribution patching ranks heads as real patching does (%s)', (ck) => {
  let m3: BgeM3;
  beforeAll(async () => { m3 = await BgeM3.load(checkpointDir(ck)); });
  afterAll(() => m3.dispose());

  it.each(CASES)('$name', async ({ text, opts, rho: minRho }) => {
    const a = await m3.attribute(text, { ...opts, steps: 1 });
    const p = await patchHeads(m3, text, { ...opts, forward: 'fast' });
    expect(Math.abs(a.value - p.value)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(p.value)));
    const est = a.sides.flatMap((s) => s.heads.flat());
    const real = p.sides.flatMap((s) => s.heads.flat());
    const largest = Math.max(...real.map(Math.abs));
    const err = Math.max(...est.map((e, i) => Math.abs(e - real[i]!)));
    const rho = spearman(est, real);
    const overlap = topKOverlap(est, real, 3);
    const gap = a.baselineValue === undefined ? '' : `, clean − corrupt ${(a.value - a.baselineValue).toExponential(3)}`;
    console.log(`${ck} ${opts.target} ${a.baseline}: f ${a.value.toPrecision(6)}${gap}; ${est.length} heads: Spearman ${rho.toFixed(3)}, `
      + `top-3 overlap ${overlap}/3 (estimate ${topK(est, 3)}, real ${topK(real, 3)}), max |estimate − effect| ${err.toExponential(2)} `
      + `(largest effect ${largest.toExponential(2)})`);
    if (a.value === 0) {
      // The ReLU is off (small-m3's ▁Par): the gradient is 0, so is every estimate, and the result says so.
      expect(a.note).toMatch(/ReLU is off/);
      expect(est.every((e) => e === 0)).toBe(true);
      return;
    }
    if (opts.target === 'dense') {
      // Flat to first order at cosine ≈ 1: only sharp-m3's effects are above float32 noise.
      if (ck === 'sharp-m3') expect(rho).toBeGreaterThan(minRho);
      return;
    }
    expect(rho).toBeGreaterThanOrEqual(minRho);
    expect(overlap).toBeGreaterThanOrEqual(2);
    // The estimate's error is second order: small next to the effects it ranks.
    expect(err).toBeLessThanOrEqual((ck === 'sharp-m3' ? 0.2 : 0.05) * largest + 1e-6);
  });
});
