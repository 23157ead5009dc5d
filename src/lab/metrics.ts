/**
 * Retrieval metrics with trec_eval's semantics (trec_eval 9.x: `ndcg_cut.10`, `recip_rank` cut at
 * 10, `recall.100`, `map`), so that a run file written by the lab gives the same numbers there.
 *
 * - A query's hits are ranked by score descending; equal scores are ordered by document id in
 *   DEscending byte order (trec_eval's `comp_sim_docno`: strcmp(docno2, docno1)). The rank column
 *   of a run file is ignored, as trec_eval ignores it.
 * - A document is relevant when its grade is >= 1; grades <= 0 and documents absent from the qrels
 *   are not relevant. nDCG's gain is the grade itself (linear, trec_eval's default, not 2^g − 1),
 *   discounted by log2(rank + 1); the ideal ranking sorts every judged grade >= 1, retrieved or not.
 * - The mean is over queries with at least one relevant judgment; queries without one are skipped
 *   (trec_eval would score such a query 0 when it appears in both files). A judged query the run
 *   has no hits for scores 0 on every measure (as `trec_eval -c`).
 */

export interface Hit {
  readonly id: string;
  readonly score: number;
}

/** Query id -> hits (any order). */
export type Run = ReadonlyMap<string, readonly Hit[]>;
/** Query id -> (document id -> grade). */
export type Qrels = ReadonlyMap<string, ReadonlyMap<string, number>>;

export const METRIC_NAMES = ['ndcg@10', 'mrr@10', 'recall@100', 'map'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];
export type Metrics = Record<MetricName, number>;

const utf8 = new TextEncoder();

/** strcmp on the UTF-8 bytes (JS string comparison orders UTF-16 units, which differs past U+FFFF). */
export function compareBytes(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(utf8.encode(a), utf8.encode(b));
}

/** trec_eval's order: score descending, then document id descending (bytewise). */
export function compareHits(a: Hit, b: Hit): number {
  if (a.score > b.score) return -1;
  if (a.score < b.score) return 1;
  return compareBytes(b.id, a.id);
}

/** The hits in trec_eval's order (a sorted copy). */
export function rankHits(hits: readonly Hit[]): Hit[] {
  return [...hits].sort(compareHits);
}

/** Relevance grades of the ranked hits (0 for unjudged documents). */
function gradesOf(ranked: readonly Hit[], judged: ReadonlyMap<string, number>): number[] {
  return ranked.map((h) => judged.get(h.id) ?? 0);
}

/** Σ over the first k ranks of max(grade, 0) / log2(rank + 1). */
function dcg(grades: readonly number[], k: number): number {
  let s = 0;
  for (let i = 0; i < Math.min(k, grades.length); i++) if (grades[i]! > 0) s += grades[i]! / Math.log2(i + 2);
  return s;
}

export function ndcgAt(grades: readonly number[], judged: ReadonlyMap<string, number>, k: number): number {
  const ideal = [...judged.values()].filter((g) => g > 0).sort((a, b) => b - a);
  const idcg = dcg(ideal, k);
  return idcg > 0 ? dcg(grades, k) / idcg : 0;
}

export function reciprocalRankAt(grades: readonly number[], k: number): number {
  for (let i = 0; i < Math.min(k, grades.length); i++) if (grades[i]! >= 1) return 1 / (i + 1);
  return 0;
}

export function recallAt(grades: readonly number[], numRel: number, k: number): number {
  let found = 0;
  for (let i = 0; i < Math.min(k, grades.length); i++) if (grades[i]! >= 1) found++;
  return numRel > 0 ? found / numRel : 0;
}

/** Average precision: Σ over relevant hits of precision at their rank, over all relevant judgments. */
export function averagePrecision(grades: readonly number[], numRel: number): number {
  let found = 0;
  let sum = 0;
  grades.forEach((g, i) => {
    if (g >= 1) sum += ++found / (i + 1);
  });
  return numRel > 0 ? sum / numRel : 0;
}

/** Every measure of one query, from its hits (any order) and its judgments. */
export function queryMetrics(hits: readonly Hit[], judged: ReadonlyMap<string, number>): Metrics {
  const grades = gradesOf(rankHits(hits), judged);
  const numRel = [...judged.values()].filter((g) => g >= 1).length;
  return {
    'ndcg@10': ndcgAt(grades, judged, 10),
    'mrr@10': reciprocalRankAt(grades, 10),
    'recall@100': recallAt(grades, numRel, 100),
    map: averagePrecision(grades, numRel),
  };
}

export interface Evaluation {
  /** Mean over the evaluated queries. */
  readonly mean: Metrics;
  /** Per evaluated query, in qrels order. */
  readonly perQuery: ReadonlyMap<string, Metrics>;
  /** Queries evaluated (those with a relevant judgment). */
  readonly queries: number;
  /** Judged queries skipped because none of their documents is relevant. */
  readonly skipped: number;
}

/** Whether a query's judgments hold a relevant document (grade >= 1): only such queries are evaluated. */
export function hasRelevant(judged: ReadonlyMap<string, number>): boolean {
  return [...judged.values()].some((g) => g >= 1);
}

export function evaluateRun(run: Run, qrels: Qrels): Evaluation {
  const perQuery = new Map<string, Metrics>();
  let skipped = 0;
  for (const [qid, judged] of qrels) {
    if (!hasRelevant(judged)) {
      skipped++;
      continue;
    }
    perQuery.set(qid, queryMetrics(run.get(qid) ?? [], judged));
  }
  const mean = Object.fromEntries(METRIC_NAMES.map((m) => [m, 0])) as Metrics;
  for (const m of perQuery.values()) for (const k of METRIC_NAMES) mean[k] += m[k];
  if (perQuery.size > 0) for (const k of METRIC_NAMES) mean[k] /= perQuery.size;
  return { mean, perQuery, queries: perQuery.size, skipped };
}
