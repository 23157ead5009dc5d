/**
 * Retrieval over a corpus with BGE-M3's three outputs, each giving a run (query id -> hits):
 * - sparse: the inverted index over lexical weights (exact top k);
 * - dense: brute force over every document, the dot product of normalised vectors (`denseScore`);
 * - colbert: re-ranking a candidate list by max-sim (`colbertScore`);
 * - hybrids: FlagEmbedding's `compute_score` mixes, (w_d·dense + w_s·sparse)/(w_d + w_s) and
 *   (w_d·dense + w_s·sparse + w_c·colbert)/(w_d + w_s + w_c) (see `combineScores`), computed exactly
 *   on the union of the sparse and dense candidates of each query.
 * Every list is in trec_eval's order (score descending, ties by document id descending).
 */
import { colbertScore, combineScores, denseScore, lexicalMatchingScore, type ColbertVecs, type LexicalWeights, type ModeWeights } from '../scores.js';
import type { InvertedIndex } from './index.js';
import { compareHits, type Hit } from './metrics.js';

export type RunMap = Map<string, Hit[]>;

function checkK(k: number): void {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be an integer >= 1, got ${JSON.stringify(k)}`);
}

/** Sparse retrieval through the index; also the wall time of each query's search, in ms. */
export function sparseRetrieve(index: InvertedIndex, queries: ReadonlyMap<string, LexicalWeights>, k: number): { run: RunMap; latencyMs: number[] } {
  checkK(k);
  const run: RunMap = new Map();
  const latencyMs: number[] = [];
  for (const [qid, q] of queries) {
    const t0 = performance.now();
    run.set(qid, index.search(q, k));
    latencyMs.push(performance.now() - t0);
  }
  return { run, latencyMs };
}

/** Dense retrieval: every document scored, the top k kept. */
export function denseRetrieve(docs: ReadonlyMap<string, Float32Array>, queries: ReadonlyMap<string, Float32Array>, k: number): RunMap {
  checkK(k);
  const run: RunMap = new Map();
  for (const [qid, q] of queries) {
    const hits: Hit[] = [];
    for (const [id, d] of docs) hits.push({ id, score: denseScore(q, d) });
    run.set(qid, hits.sort(compareHits).slice(0, k));
  }
  return run;
}

/** Re-ranks each query's candidates by ColBERT max-sim. */
export function colbertRerank(candidates: ReadonlyMap<string, readonly Hit[]>, queries: ReadonlyMap<string, ColbertVecs>, docs: ReadonlyMap<string, ColbertVecs>): RunMap {
  const run: RunMap = new Map();
  for (const [qid, hits] of candidates) {
    const q = queries.get(qid);
    if (!q) throw new Error(`colbertRerank: no ColBERT vectors for query ${JSON.stringify(qid)}`);
    run.set(qid, hits.map((h) => {
      const d = docs.get(h.id);
      if (!d) throw new Error(`colbertRerank: no ColBERT vectors for document ${JSON.stringify(h.id)}`);
      return { id: h.id, score: colbertScore(q, d) };
    }).sort(compareHits));
  }
  return run;
}

/** What a hybrid needs of each query and document. */
export interface HybridOutputs {
  readonly dense: ReadonlyMap<string, Float32Array>;
  readonly sparse: ReadonlyMap<string, LexicalWeights>;
  /** Present for 'colbert+sparse+dense'. */
  readonly colbert?: ReadonlyMap<string, ColbertVecs>;
}

export type HybridMode = 'sparse+dense' | 'colbert+sparse+dense';

/**
 * Weighted hybrid over each query's candidates (typically the union of its sparse and dense top k):
 * every candidate's scores are computed exactly and combined as FlagEmbedding's compute_score does.
 */
export function hybridRerank(
  candidates: ReadonlyMap<string, readonly Hit[]>, queries: HybridOutputs, docs: HybridOutputs,
  mode: HybridMode, weights: ModeWeights, k: number,
): RunMap {
  checkK(k);
  if (mode === 'colbert+sparse+dense' && (!queries.colbert || !docs.colbert)) throw new Error(`hybrid ${mode} needs ColBERT vectors`);
  const get = <T>(m: ReadonlyMap<string, T>, id: string, what: string): T => {
    const v = m.get(id);
    if (v === undefined) throw new Error(`hybrid: no ${what} for ${JSON.stringify(id)}`);
    return v;
  };
  const run: RunMap = new Map();
  for (const [qid, hits] of candidates) {
    const ids = [...new Set(hits.map((h) => h.id))];
    const scored = ids.map((id) => {
      const dense = denseScore(get(queries.dense, qid, 'dense vector'), get(docs.dense, id, 'dense vector'));
      const sparse = lexicalMatchingScore(get(queries.sparse, qid, 'lexical weights'), get(docs.sparse, id, 'lexical weights'));
      const colbert = mode === 'colbert+sparse+dense' ? colbertScore(get(queries.colbert!, qid, 'ColBERT vectors'), get(docs.colbert!, id, 'ColBERT vectors')) : 0;
      return { id, score: combineScores(dense, sparse, colbert, weights)[mode] };
    });
    run.set(qid, scored.sort(compareHits).slice(0, k));
  }
  return run;
}

/** Per query, the hits of several runs, each document once (for re-ranking the union). */
export function unionRuns(...runs: ReadonlyMap<string, readonly Hit[]>[]): RunMap {
  const out: RunMap = new Map();
  for (const run of runs) {
    for (const [qid, hits] of run) {
      const list = out.get(qid) ?? [];
      const seen = new Set(list.map((h) => h.id));
      for (const h of hits) if (!seen.has(h.id)) {
        seen.add(h.id);
        list.push(h);
      }
      out.set(qid, list);
    }
  }
  return out;
}

/** The median of a list of numbers (0 for none). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
