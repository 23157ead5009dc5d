/**
 * explain.ts on the fixture checkpoints: the lexical breakdown sums to the sparse score exactly, the
 * ColBERT alignment gives back the max-sim score, token weights are the sparse head's, and all of them
 * agree with the float64 reference scores in reference.json.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3 } from '../src/m3.js';
import {
  colbertPosition, explainColbert, explainLexicalMatch, explainPair, explainTokenWeights,
} from '../src/explain.js';
import type { EncodeOutput } from '../src/m3.js';
import { colbertSimilarity, hostSimilarity } from '../src/scores.js';
import { checkpointDir, type Checkpoint } from './helpers/fixtures.js';
import { loadCases, Reference, sparseMaxAbsDiff, type Case } from './helpers/reference.js';

const cases = new Map(loadCases().map((c) => [c.id, c]));
const byId = (id: string): Case => cases.get(id)!;

describe.each(['sharp-m3', 'small-m3'] as Checkpoint[])('%s explanations', (ckpt) => {
  let m3: BgeM3;
  let ref: Reference;
  let q: EncodeOutput;
  let p: EncodeOutput;
  let queries: string[];
  let passages: string[];
  beforeAll(async () => {
    m3 = await BgeM3.load(checkpointDir(ckpt));
    ref = await Reference.open(ckpt);
    ({ queries, passages } = ref.json.scores);
    const all = { returnDense: true, returnSparse: true, returnColbert: true };
    q = await m3.encode({ inputIds: queries.map((id) => byId(id).input_ids) }, all);
    p = await m3.encode({ inputIds: passages.map((id) => byId(id).input_ids) }, all);
  });
  afterAll(async () => {
    m3.dispose();
    await ref.close();
  });

  it('lexical terms: shared ids, w_q·w_p each, summing exactly to computeLexicalMatchingScore', () => {
    let sharedPairs = 0;
    queries.forEach((qid, i) => passages.forEach((pid, j) => {
      const [qw, pw] = [q.lexicalWeights![i]!, p.lexicalWeights![j]!];
      const e = explainLexicalMatch(m3, qw, pw);
      const score = m3.computeLexicalMatchingScore(qw, pw);
      expect(e.score).toBe(score);
      // summed in id order (the order lexicalMatchingScore walks the query's keys): bit-equal
      const inIdOrder = [...e.terms].sort((a, b) => a.id - b.id).reduce((s, t) => s + t.contribution, 0);
      expect(inIdOrder).toBe(score);
      expect(Math.abs(ref.json.scores.sparse[i]![j]! - score)).toBeLessThan(1e-4);
      const shared = Object.keys(qw).filter((k) => k in pw);
      expect(e.terms.map((t) => String(t.id)).sort()).toEqual(shared.sort());
      expect(e.queryOnly).toBe(Object.keys(qw).length - shared.length);
      expect(e.passageOnly).toBe(Object.keys(pw).length - shared.length);
      for (const [k, t] of e.terms.entries()) {
        expect(t.queryWeight).toBe(qw[String(t.id)]);
        expect(t.passageWeight).toBe(pw[String(t.id)]);
        expect(t.contribution).toBe(t.queryWeight * t.passageWeight);
        expect(t.token).toBe(m3.tokenizer.idToToken(t.id));
        expect(m3.convertIdToToken({ [t.id]: 1 })).toHaveProperty([t.text]);
        if (k > 0) expect(t.contribution).toBeLessThanOrEqual(e.terms[k - 1]!.contribution);
      }
      sharedPairs += e.terms.length > 0 ? 1 : 0;
    }));
    expect(sharedPairs).toBeGreaterThan(0); // the fixtures do share tokens (e.g. "BGE M3")
  });

  it('ColBERT alignment: row maxima of the full similarity matrix, mean = colbertScore', () => {
    queries.forEach((_, i) => passages.forEach((_, j) => {
      const [qv, pv] = [q.colbertVecs![i]!, p.colbertVecs![j]!];
      const e = explainColbert(qv, pv);
      expect([e.queryRows, e.passageRows]).toEqual([qv.rows, pv.rows]);
      expect(e.similarity.length).toBe(qv.rows * pv.rows);
      expect(e.matches.map((m) => m.queryIndex)).toEqual([...Array(qv.rows).keys()]);
      for (const m of e.matches) {
        const row = e.similarity.subarray(m.queryIndex * pv.rows, (m.queryIndex + 1) * pv.rows);
        expect(m.similarity).toBe(Math.max(...row));
        expect(row.indexOf(m.similarity)).toBe(m.passageIndex); // first maximum
        let dot = 0; // the matrix holds real dot products
        for (let d = 0; d < qv.dim; d++) dot += qv.data[m.queryIndex * qv.dim + d]! * pv.data[m.passageIndex * pv.dim + d]!;
        expect(Math.abs(dot - m.similarity)).toBeLessThan(1e-6);
      }
      const recomputed = e.matches.reduce((s, m) => s + m.similarity, 0) / e.matches.length;
      expect(recomputed).toBe(e.score);
      expect(m3.colbertScore(qv, pv)).toBe(e.score); // the same matrix, maxima and mean
      expect(Math.abs(e.score - ref.json.scores.colbert[i]![j]!)).toBeLessThan(1e-4);
    }));
    expect(colbertPosition(0)).toBe(1); // vector 0 is the token after <s>
  });

  it("ColBERT on a GPU backend (plain loops, no synchronous read) equals the matMul path and the float64 reference", () => {
    let [matrixErr, scoreErr] = [0, 0];
    queries.forEach((_, i) => passages.forEach((_, j) => {
      const [qv, pv] = [q.colbertVecs![i]!, p.colbertVecs![j]!];
      const onBackend = colbertSimilarity(qv, pv);
      const onHost = hostSimilarity(qv, pv);
      expect(onHost.length).toBe(onBackend.length);
      onHost.forEach((v, k) => { matrixErr = Math.max(matrixErr, Math.abs(v - onBackend[k]!)); });
      let sum = 0;
      for (let r = 0; r < qv.rows; r++) sum += Math.max(...onHost.subarray(r * pv.rows, (r + 1) * pv.rows));
      scoreErr = Math.max(scoreErr, Math.abs(sum / qv.rows - ref.json.scores.colbert[i]![j]!));
    }));
    console.log(`${ckpt}: ColBERT similarity, loops vs matMul max abs err ${matrixErr.toExponential(2)}; score vs float64 reference ${scoreErr.toExponential(2)}`);
    expect(matrixErr).toBeLessThan(1e-6);
    expect(scoreErr).toBeLessThan(1e-5);
  });

  it('token weights: every position of the text, the sparse head after ReLU', async () => {
    const ids = ['repeat_en', 'readme_p1', 'zh_bge'];
    const tw = await explainTokenWeights(m3, { inputIds: ids.map((id) => byId(id).input_ids) });
    for (const [b, id] of ids.entries()) {
      const c = byId(id);
      const rows = tw[b]!;
      expect(rows.map((r) => r.id)).toEqual(c.input_ids);
      expect(rows.map((r) => r.token)).toEqual(c.tokens);
      expect(rows.map((r) => r.position)).toEqual(c.input_ids.map((_, i) => i));
      for (const r of rows) expect(r.weight).toBeGreaterThanOrEqual(0);
      expect(rows[0]!.special && rows.at(-1)!.special).toBe(true);
      // the lexical weights are the per-id maxima over non-special positions with weight > 0
      const lw: Record<string, number> = {};
      for (const r of rows) if (!r.special && r.weight > 0) lw[r.id] = Math.max(lw[r.id] ?? 0, r.weight);
      expect(lw).toEqual(m3.lexicalWeights(c.input_ids, rows.map((r) => r.weight)));
      expect(sparseMaxAbsDiff(lw, ref.json.cases[id]!.lexical_weights)).toBeLessThan(1e-4);
    }
  });

  it('explainPair on texts: the scores computeScore gives, and token views of both texts', async () => {
    const [query, passage] = [byId('readme_q1').text, byId('readme_p1').text];
    const e = await explainPair(m3, query, passage);
    const s = await m3.computeScore([[query, passage]]);
    expect(e.scores.dense).toBe(s.dense[0]);
    expect(e.scores.sparse).toBe(s.sparse[0]);
    expect(e.scores.colbert).toBe(s.colbert[0]);
    expect(e.lexical.score).toBe(e.scores.sparse);
    expect(Math.abs(e.colbert.score - e.scores.colbert)).toBeLessThan(1e-6);
    expect(e.query.map((t) => t.id)).toEqual(byId('readme_q1').input_ids);
    expect(e.passage.map((t) => t.id)).toEqual(byId('readme_p1').input_ids);
  });
});
