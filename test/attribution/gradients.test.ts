/**
 * The gradients attribution rests on, checked without them: at a hook point the probe gradient's
 * directional derivative g·v must equal the central difference (f(a + εv) − f(a − εv)) / 2ε, where
 * f(a ± εv) is computed by the public `runWithHooks` with a hook that adds ±εv (no probes, no tf.grad).
 * Then integrated gradients' completeness: the token attributions sum to f(x) − f(x′), with f(x′)
 * read from the model's own forward on the baseline text itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { BgeM3 } from '../../src/m3.js';
import { disposeProbeResult, probeGradients, type Quantity } from '../../src/attribution/probes.js';
import type { ActivationName } from '../../src/hooks/names.js';
import { denseScore, lexicalMatchingScore } from '../../src/scores.js';
import { CHECKPOINTS, checkpointDir } from '../helpers/fixtures.js';

const TEXT = 'BM25 is a bag-of-words retrieval function that ranks documents';
const PAIR: [string, string] = ['What is BGE M3?', 'BGE M3 is an embedding model supporting dense retrieval, lexical matching and multi-vector interaction.'];

describe.each(CHECKPOINTS)('gradients at hook points against central differences (%s)', (ck) => {
  let m3: BgeM3;
  beforeAll(async () => { m3 = await BgeM3.load(checkpointDir(ck)); });
  afterAll(() => m3.dispose());

  /** f on the public path with εv added at `name` of side `side` (the other side clean). */
  async function fAt(q: Quantity, ids: number[][], side: number, name: ActivationName, v: tf.Tensor | undefined, eps: number): Promise<number> {
    let w = NaN;
    const outs = [];
    for (let s = 0; s < ids.length; s++) {
      const hooks: Parameters<BgeM3['runWithHooks']>[1] = {
        'sparse_head.hook_out': (t) => { if (s === 0) w = t.dataSync()[(q as { position: number }).position ?? 0]!; },
      };
      if (v && s === side) hooks[name] = (a) => tf.add(a, tf.mul(v, eps));
      outs.push(await m3.runWithHooks({ inputIds: [ids[s]!] }, hooks, { forward: 'reference' }));
    }
    if (q.kind === 'lexical-weight') return w;
    if (q.kind === 'dense-score') return denseScore(outs[0]!.denseVecs![0]!, outs[1]!.denseVecs![0]!);
    return lexicalMatchingScore(outs[0]!.lexicalWeights![0]!, outs[1]!.lexicalWeights![0]!);
  }

  it.each([
    ['lexical weight of ▁retrieval', 'weight'],
    ['dense score of a pair', 'dense'],
    ['lexical score of a pair', 'lexical'],
  ])('%s', async (_, kind) => {
    const ids = kind === 'weight' ? m3.tokenize([TEXT]) : m3.tokenize(PAIR);
    const q: Quantity = kind === 'weight'
      ? { kind: 'lexical-weight', position: ids[0]!.indexOf(m3.tokenizer.tokenToId('▁retrieval')!) }
      : { kind: kind === 'dense' ? 'dense-score' : 'lexical-score' };
    const names: ActivationName[] = ['encoder.layer.0.attention.self.hook_out', 'encoder.layer.1.intermediate.hook_out', 'embeddings.hook_out'];
    const r = probeGradients(m3, q, ids.map((i) => ({ ids: i })), names);
    const f0 = await fAt(q, ids, 0, names[0]!, undefined, 0);
    expect(Math.abs(r.value - f0), 'f from the probed forward equals f from runWithHooks').toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(f0)));
    let worst = 0;
    const lines: string[] = [];
    for (let side = 0; side < ids.length; side++) {
      for (const name of names) {
        const g = r.sides[side]!.grads.get(name)!;
        const gn = tf.tidy(() => tf.norm(g).dataSync()[0]!);
        // Directions: along the gradient (g·v = |g|) and the three coordinates where |g| is largest.
        const flat = g.dataSync();
        const top = Array.from(flat.keys()).sort((a, b) => Math.abs(flat[b]!) - Math.abs(flat[a]!)).slice(0, 3);
        const dirs: Array<[tf.Tensor, number]> = [[tf.div(g, gn), gn]];
        for (const i of top) {
          const e = new Float32Array(flat.length);
          e[i] = 1;
          dirs.push([tf.tensor(e, g.shape), flat[i]!]);
        }
        for (const [v, gv] of dirs) {
          const eps = 1e-2; // float32: rounding error ~1e-7·|f|/ε, truncation ~ε²·f‴: both well under 1e-3 here
          const fd = ((await fAt(q, ids, side, name, v, eps)) - (await fAt(q, ids, side, name, v, -eps))) / (2 * eps);
          const rel = Math.abs(fd - gv) / Math.max(Math.abs(gv), 1e-4 * Math.max(1e-3, Math.abs(f0)) / eps);
          worst = Math.max(worst, rel);
          lines.push(`side ${side} ${name}: g·v ${gv.toExponential(4)} central difference ${fd.toExponential(4)} rel ${rel.toExponential(2)}`);
          v.dispose();
        }
      }
    }
    disposeProbeResult(r);
    console.log(`${ck} ${kind}: f = ${f0.toPrecision(6)}, max relative error of g·v vs central differences (ε = 1e-2) ${worst.toExponential(2)}\n  ${lines.join('\n  ')}`);
    expect(worst).toBeLessThanOrEqual(1e-2); // measured ≤ 1.6e-3 on the three checkpoints
  });
});

describe.each(CHECKPOINTS)('integrated gradients: completeness (%s)', (ck) => {
  let m3: BgeM3;
  beforeAll(async () => { m3 = await BgeM3.load(checkpointDir(ck)); });
  afterAll(() => m3.dispose());

  it('token attributions sum to f(text) − f(<mask> text); f(<mask> text) as encode gives it; the gap shrinks with steps', async () => {
    const gaps: number[] = [];
    let a;
    for (const steps of [4, 64]) {
      a = await m3.attribute(TEXT, { target: 'retrieval', steps });
      const ig = a.integratedGradients;
      expect(ig.sum).toBeCloseTo(a.sides[0]!.tokenAttributions.reduce((x, y) => x + y, 0), 10);
      expect(ig.gap).toBeCloseTo(ig.sum - (a.value - ig.baselineValue), 10);
      gaps.push(Math.abs(ig.gap));
      console.log(`${ck}: steps ${steps}: f(x) ${a.value.toPrecision(6)} f(x′) ${ig.baselineValue.toPrecision(6)} Σ attributions ${ig.sum.toPrecision(6)} gap ${ig.gap.toExponential(2)} (${(100 * Math.abs(ig.gap) / Math.abs(a.value - ig.baselineValue)).toFixed(3)} % of f(x) − f(x′))`);
    }
    // f(x) and f(x′) on the model's own path: the baseline is the text with its tokens made <mask>.
    const ids = m3.tokenize([TEXT])[0]!;
    const tok = m3.tokenizer;
    const masked = ids.map((id) => (id === tok.bosId || id === tok.eosId ? id : tok.maskId));
    const w = async (row: number[]) => {
      let v = NaN;
      await m3.runWithHooks({ inputIds: [row] }, { 'sparse_head.hook_out': (t) => { v = t.dataSync()[a!.target!.position]!; } });
      return v;
    };
    expect(Math.abs(a!.value - (await w(ids)))).toBeLessThanOrEqual(1e-5);
    expect(Math.abs(a!.integratedGradients.baselineValue - (await w(masked)))).toBeLessThanOrEqual(1e-5);
    const delta = Math.abs(a!.value - a!.integratedGradients.baselineValue);
    expect(gaps[1]!).toBeLessThanOrEqual(Math.max(gaps[0]!, 1e-6));
    // Where the ReLU switches on along the path (tiny-m3: the weight is 0 up to α ≈ 0.87) the midpoint
    // rule converges only like 1/steps in that step: a few per cent at 64 steps; elsewhere ~1e-5.
    expect(gaps[1]!).toBeLessThanOrEqual(0.05 * delta + 1e-6);
  });

  it('for a pair (lexical score, corrupt baseline) the sum over both texts closes the gap to f(x) − f(corrupt)', async () => {
    const corrupt: [string, string] = ['What is the M3?', PAIR[1]];
    const a = await m3.attribute(PAIR, { target: 'lexical', baseline: { corrupt }, steps: 64 });
    const ig = a.integratedGradients;
    expect(ig.baselineValue).toBeCloseTo(a.baselineValue!, 5); // the corrupt pair is the baseline of both methods
    const enc = await m3.computeScore([corrupt]);
    expect(Math.abs(a.baselineValue! - enc.sparse[0]!)).toBeLessThanOrEqual(1e-5);
    expect(a.sides[1]!.tokenAttributions.every((x) => x === 0)).toBe(true); // the passage is its own baseline
    const delta = Math.abs(a.value - ig.baselineValue);
    console.log(`${ck}: lexical score ${a.value.toPrecision(6)}, corrupt ${ig.baselineValue.toPrecision(6)}, Σ ${ig.sum.toPrecision(6)}, gap ${ig.gap.toExponential(2)}`);
    expect(Math.abs(ig.gap)).toBeLessThanOrEqual(0.01 * delta + 1e-6);
  });
});
