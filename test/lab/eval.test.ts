/**
 * Evaluation end to end on a fixture checkpoint and the synthetic BEIR set: every run equals brute
 * force over encode's own outputs, the run file scores as the run, and the metrics table is printed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { BgeM3, type EncodeOutput } from '../../src/m3.js';
import { documentText, readBeir, type BeirSet } from '../../src/lab/beir.js';
import { evaluateBeir, HYBRID_WEIGHTS, type EvalMode, type EvalResult } from '../../src/lab/evaluate.js';
import { createHead, HEAD_NAMES } from '../../src/lab/heads/registry.js';
import { compareHits, evaluateRun, METRIC_NAMES, type Hit } from '../../src/lab/metrics.js';
import { readRunFile, writeRunFile } from '../../src/lab/runfile.js';
import { denseScore, lexicalMatchingScore } from '../../src/scores.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { makeSyntheticBeir } from './beir-fixture.js';

const root = mkdtempSync(join(tmpdir(), 'eval-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const K = 100;

describe('sparse eval on sharp-m3 and a synthetic BEIR set', () => {
  let m3: BgeM3;
  let set: BeirSet;
  let qids: string[];
  let docIds: string[];
  let qEnc: EncodeOutput;
  let dEnc: EncodeOutput;
  const results = new Map<string, EvalResult>();

  beforeAll(async () => {
    m3 = await BgeM3.load(checkpointDir('sharp-m3'));
    makeSyntheticBeir(join(root, 'set'), m3.tokenizer);
    set = await readBeir(join(root, 'set'), 'test');
    qids = [...set.qrels.keys()];
    docIds = [...set.corpus.keys()];
    const all = { returnDense: true, returnSparse: true, returnColbert: true };
    qEnc = await m3.encode(qids.map((q) => set.queries.get(q)!), { ...all, maxLength: 512 });
    dEnc = await m3.encode(docIds.map((d) => documentText(set.corpus.get(d)!)), all);
  });
  afterAll(() => m3.dispose());

  const evaluate = async (name: string, head: string, mode: EvalMode) => {
    const before = tf.memory().numTensors;
    const h = createHead(head, m3);
    const res = await evaluateBeir(m3, set, h, { mode, k: K });
    h.dispose();
    expect(tf.memory().numTensors).toBe(before);
    results.set(name, res);
    return res;
  };

  /** Brute force: every document scored by `score`, kept when `keep`, trec_eval's order, top K. */
  const bruteForce = (score: (qi: number, di: number) => number, keep: (qi: number, di: number) => boolean = () => true) =>
    new Map(qids.map((q, qi) => [q, docIds.flatMap((id, di): Hit[] => (keep(qi, di) ? [{ id, score: score(qi, di) }] : [])).sort(compareHits).slice(0, K)]));

  it('m3 sparse: the index run equals brute force over encode().lexicalWeights, exactly', async () => {
    const res = await evaluate('m3 (sparse)', 'm3', 'sparse');
    const qw = qEnc.lexicalWeights!;
    const dw = dEnc.lexicalWeights!;
    const want = bruteForce((qi, di) => lexicalMatchingScore(qw[qi]!, dw[di]!), (qi, di) => Object.keys(qw[qi]!).some((t) => t in dw[di]!));
    expect(res.run).toEqual(want);
    expect(res.queries).toBe(qids.length - 2);
    expect(res.skipped).toBe(2);
    expect(res.index!.avgDocNonZeros).toBeGreaterThan(5);
    expect(res.index!.postingsPerQuery).toBeCloseTo(res.index!.flops * set.corpus.size, 9);
  });

  it('bm25 and idf nearly solve a set whose relevance is carried by rare tokens', async () => {
    for (const head of ['bm25', 'idf']) {
      const res = await evaluate(`${head} (sparse)`, head, 'sparse');
      // Every query shares its two rare tokens with its grade-2 document only: it must rank first.
      expect(res.metrics['mrr@10']).toBe(1);
      expect(res.metrics['recall@100']).toBe(1);
      expect(res.metrics['ndcg@10']).toBeGreaterThan(0.9);
    }
  });

  it('dense, ColBERT re-ranking and the hybrids equal brute force over encode outputs', async () => {
    const dense = await evaluate('dense', 'm3', 'dense');
    const dq = qEnc.denseVecs!;
    const dd = dEnc.denseVecs!;
    expect(dense.run).toEqual(bruteForce((qi, di) => denseScore(dq[qi]!, dd[di]!)));
    expect(dense.index).toBeUndefined();

    const colbert = await evaluate('colbert (dense top 100 re-ranked)', 'm3', 'colbert');
    // with K >= corpus size the candidates are the whole corpus: ColBERT over everything
    expect(colbert.run.get(qids[0]!)!.length).toBe(set.corpus.size);
    const cq = qEnc.colbertVecs!;
    const cd = dEnc.colbertVecs!;
    const top = colbert.run.get(qids[3]!)![0]!;
    expect(top.score).toBe(m3.colbertScore(cq[3]!, cd[docIds.indexOf(top.id)]!));

    const hybrid = await evaluate('hybrid (dense + 0.3 sparse)', 'm3', 'hybrid');
    const [wd, ws] = HYBRID_WEIGHTS;
    const qw = qEnc.lexicalWeights!;
    const dw = dEnc.lexicalWeights!;
    // candidates: the whole corpus (dense top 100 >= 72 documents): brute force over all
    expect(hybrid.run).toEqual(bruteForce((qi, di) => (wd * denseScore(dq[qi]!, dd[di]!) + ws * lexicalMatchingScore(qw[qi]!, dw[di]!)) / (wd + ws)));
    const all = await evaluate('all (dense + 0.3 sparse + colbert)', 'm3', 'all');
    expect(all.run.get(qids[0]!)!.length).toBe(set.corpus.size);
  });

  it('evaluates every other registered head (sparse mode)', async () => {
    for (const head of HEAD_NAMES.filter((h) => !['m3', 'bm25', 'idf'].includes(h))) {
      const res = await evaluate(`${head} (sparse)`, head, 'sparse');
      // Sanity of the run itself: at most K hits, in trec_eval's order, each a corpus document.
      for (const hits of res.run.values()) {
        expect(hits.length).toBeLessThanOrEqual(K);
        expect([...hits].sort(compareHits)).toEqual(hits);
        for (const h of hits) expect(set.corpus.has(h.id)).toBe(true);
      }
    }
  });

  it('the run file scores as the run (trec_eval order and ties kept)', async () => {
    const res = results.get('bm25 (sparse)')!;
    const path = join(root, 'bm25.trec');
    await writeRunFile(path, res.run, 'bm25');
    expect(evaluateRun(await readRunFile(path), set.qrels).mean).toEqual(res.metrics);
  });

  it('prints the metrics table', () => {
    const rows = [...results].map(([name, r]) => `| ${name} | ${METRIC_NAMES.map((m) => r.metrics[m].toFixed(4)).join(' | ')} | ${r.index ? `${r.index.avgQueryNonZeros.toFixed(1)} / ${r.index.avgDocNonZeros.toFixed(1)} | ${r.index.flops.toFixed(2)}` : '– | –'} |`);
    const table = [`sharp-m3, synthetic set: ${qids.length - 2} queries, ${set.corpus.size} documents`,
      `| head / mode | ${METRIC_NAMES.join(' | ')} | non-zeros q / d | FLOPS |`, `|---|${METRIC_NAMES.map(() => '---').join('|')}|---|---|`, ...rows].join('\n');
    console.log(table);
    for (const r of results.values()) for (const m of METRIC_NAMES) expect(r.metrics[m]).toBeGreaterThanOrEqual(0);
    expect(results.size).toBe(7 + HEAD_NAMES.length - 3);
  });
});
