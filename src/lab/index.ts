/**
 * An inverted index over lexical weights: for each token id, the documents that carry it and their
 * weights (its postings). A query is scored term at a time: for each of its terms, every posting
 * adds w_query · w_doc to that document's accumulator. The sum per document is taken over the
 * query's terms in the order `lexicalMatchingScore` takes them, so every score is bit-identical to
 * brute-force scoring, and the top k (trec_eval's order: score descending, then document id
 * descending) is exact.
 *
 * Only documents sharing at least one term with the query are hits, as in Lucene; the rest score 0
 * and are not ranked.
 */
import type { LexicalWeights } from '../scores.js';
import type { Hit } from './metrics.js';

interface Postings {
  docs: Int32Array; // document numbers, ascending
  weights: Float64Array; // the document's weight for the term, same order
}

export interface IndexStats {
  readonly documents: number;
  /** Distinct token ids with at least one posting. */
  readonly terms: number;
  readonly postings: number;
  /** Mean non-zero weights per document (= postings / documents). */
  readonly avgDocNonZeros: number;
  /** Mean non-zero weights per query. */
  readonly avgQueryNonZeros: number;
  /**
   * SPLADE's FLOPS: Σ_t p_q(t)·p_d(t), p_q(t) and p_d(t) the fractions of queries and documents
   * whose weight for t is non-zero: the expected multiplications for one (query, document) pair.
   */
  readonly flops: number;
  /**
   * Postings a query touches, measured: the mean over queries of Σ_{t ∈ q} df(t). Equals
   * flops · documents (the same expectation taken over the whole corpus).
   */
  readonly postingsPerQuery: number;
  /** Bytes of the posting arrays: a 4-byte document number and an 8-byte weight per posting. */
  readonly bytes: number;
}

/** A text's weights as parallel arrays (zero weights dropped), validated. */
function checkWeights(w: LexicalWeights, what: string): { terms: number[]; weights: number[] } {
  if (w === null || typeof w !== 'object') throw new TypeError(`${what} must be an object of token id -> weight`);
  const terms: number[] = [];
  const weights: number[] = [];
  for (const key in w) {
    if (!Object.hasOwn(w, key)) continue;
    const t = Number(key);
    if (!Number.isSafeInteger(t) || t < 0 || String(t) !== key) throw new TypeError(`${what}: key ${JSON.stringify(key)} is not a token id`);
    const v = w[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`${what}: weight of token ${key} is ${JSON.stringify(v)}, not a finite number`);
    if (v !== 0) {
      terms.push(t);
      weights.push(v);
    }
  }
  return { terms, weights };
}

export class InvertedIndex {
  private readonly postings = new Map<number, Postings>();
  /** tieRank[d]: document d's place in byte order of ids; among equal scores the larger ranks first. */
  private readonly tieRank: Int32Array;
  private readonly acc: Float64Array;
  private readonly seen: Uint8Array;
  readonly totalPostings: number;

  constructor(readonly ids: readonly string[], docs: readonly LexicalWeights[]) {
    if (ids.length !== docs.length) throw new Error(`InvertedIndex: ${ids.length} ids for ${docs.length} documents`);
    if (new Set(ids).size !== ids.length) throw new Error('InvertedIndex: document ids must be distinct');
    // Pass 1: postings per term; pass 2: fill them in document order.
    const entries = docs.map((w, d) => checkWeights(w, `document ${JSON.stringify(ids[d])}`));
    const df = new Map<number, number>();
    for (const e of entries) for (const t of e.terms) df.set(t, (df.get(t) ?? 0) + 1);
    const filling = new Map<number, Postings & { n: number }>();
    let total = 0;
    for (const [t, n] of df) {
      filling.set(t, { docs: new Int32Array(n), weights: new Float64Array(n), n: 0 });
      total += n;
    }
    this.totalPostings = total;
    entries.forEach((e, d) => {
      for (let j = 0; j < e.terms.length; j++) {
        const p = filling.get(e.terms[j]!)!;
        p.docs[p.n] = d;
        p.weights[p.n++] = e.weights[j]!;
      }
    });
    for (const [t, p] of filling) this.postings.set(t, { docs: p.docs, weights: p.weights });
    const utf8 = new TextEncoder();
    const bytes = ids.map((id) => utf8.encode(id));
    const byBytes = ids.map((_, d) => d).sort((a, b) => Buffer.compare(bytes[a]!, bytes[b]!));
    this.tieRank = new Int32Array(ids.length);
    byBytes.forEach((d, r) => { this.tieRank[d] = r; });
    this.acc = new Float64Array(ids.length);
    this.seen = new Uint8Array(ids.length);
  }

  get size(): number {
    return this.ids.length;
  }

  /** Documents carrying `term`. */
  df(term: number): number {
    return this.postings.get(term)?.docs.length ?? 0;
  }

  /** The top `k` documents for `query` (exact), in trec_eval's order. */
  search(query: LexicalWeights, k: number): Hit[] {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be an integer >= 1, got ${JSON.stringify(k)}`);
    const touched: number[] = [];
    const q = checkWeights(query, 'query');
    for (let j = 0; j < q.terms.length; j++) {
      const wq = q.weights[j]!;
      const p = this.postings.get(q.terms[j]!);
      if (!p) continue;
      for (let i = 0; i < p.docs.length; i++) {
        const d = p.docs[i]!;
        if (!this.seen[d]) {
          this.seen[d] = 1;
          this.acc[d] = 0;
          touched.push(d);
        }
        this.acc[d] = this.acc[d]! + wq * p.weights[i]!;
      }
    }
    const { acc, tieRank } = this;
    touched.sort((a, b) => (acc[a]! > acc[b]! ? -1 : acc[a]! < acc[b]! ? 1 : tieRank[b]! - tieRank[a]!));
    const hits = touched.slice(0, k).map((d) => ({ id: this.ids[d]!, score: acc[d]! }));
    for (const d of touched) this.seen[d] = 0;
    return hits;
  }

  /** Static statistics of the index against a query set (see `IndexStats`). */
  stats(queries: readonly LexicalWeights[]): IndexStats {
    const N = this.size;
    const Q = queries.length;
    let queryNonZeros = 0;
    let touched = 0;
    const queriesWith = new Map<number, number>();
    queries.forEach((q, i) => {
      const { terms } = checkWeights(q, `query ${i}`);
      queryNonZeros += terms.length;
      for (const t of terms) {
        touched += this.df(t);
        queriesWith.set(t, (queriesWith.get(t) ?? 0) + 1);
      }
    });
    let flops = 0;
    for (const [t, nq] of queriesWith) flops += (nq / Q) * (this.df(t) / N);
    return {
      documents: N,
      terms: this.postings.size,
      postings: this.totalPostings,
      avgDocNonZeros: N > 0 ? this.totalPostings / N : 0,
      avgQueryNonZeros: Q > 0 ? queryNonZeros / Q : 0,
      flops: Q > 0 && N > 0 ? flops : 0,
      postingsPerQuery: Q > 0 ? touched / Q : 0,
      bytes: this.totalPostings * (Int32Array.BYTES_PER_ELEMENT + Float64Array.BYTES_PER_ELEMENT),
    };
  }
}
