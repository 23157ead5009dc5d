/**
 * `bm25`: the classic sparse baseline on the same XLM-R token ids BGE-M3 reads, scored as Lucene 8+
 * (and so Pyserini/Anserini) score it, so that the lab's sparse dot product IS BM25:
 *
 *   score(q, d) = Σ_{t ∈ q} count(t, q) · idf(t) · tf(t, d) / (tf(t, d) + k1·(1 − b + b·|d| / avgdl))
 *   idf(t)      = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))
 *
 * A document's weight for t is idf(t)·tf/(tf + k1·(…)); a query's weight is the number of times t
 * occurs in it (Anserini's bag-of-words query boosts each distinct term by its count; a Lucene
 * query with a repeated term clause adds it once per occurrence: the same sum). Lucene 8 dropped
 * the constant (k1 + 1) factor, which does not change rankings. One difference remains: Lucene
 * stores |d| lossily in one byte (SmallFloat), the lab uses the exact length.
 *
 * Terms are token ids with `<s>`, `</s>`, `<pad>` and `<unk>` dropped; |d| counts the remaining
 * tokens; N, df and avgdl come from the corpus given to `fit`.
 */
import type { LexicalWeights } from '../../scores.js';
import type { HeadInput, SparseHead } from './head.js';

/** Corpus statistics: document count, document frequency per term, mean document length in terms. */
export interface TermStats {
  readonly docs: number;
  readonly df: ReadonlyMap<number, number>;
  readonly avgdl: number;
}

/** Term -> occurrences in one text, special ids dropped, in first-occurrence order. */
export function termCounts(ids: readonly number[], dropped: ReadonlySet<number>): Map<number, number> {
  const counts = new Map<number, number>();
  for (const id of ids) if (!dropped.has(id)) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

export function corpusStats(docs: readonly (readonly number[])[], dropped: ReadonlySet<number>): TermStats {
  if (docs.length === 0) throw new Error('corpus statistics need at least one document');
  const df = new Map<number, number>();
  let totalLength = 0;
  for (const ids of docs) {
    const counts = termCounts(ids, dropped);
    for (const [t, c] of counts) {
      df.set(t, (df.get(t) ?? 0) + 1);
      totalLength += c;
    }
  }
  return { docs: docs.length, df, avgdl: totalLength / docs.length };
}

/** Lucene's BM25 idf: ln(1 + (N − df + 0.5)/(df + 0.5)), always > 0. */
export function bm25Idf(stats: TermStats, term: number): number {
  const df = stats.df.get(term) ?? 0;
  return Math.log(1 + (stats.docs - df + 0.5) / (df + 0.5));
}

export interface Bm25Options {
  /** Term-frequency saturation, default 0.9 (Pyserini's default). */
  readonly k1?: number;
  /** Length normalisation in [0, 1], default 0.4 (Pyserini's default). */
  readonly b?: number;
}

export function checkBm25Options(opts: Bm25Options): { k1: number; b: number } {
  const k1 = opts.k1 ?? 0.9;
  const b = opts.b ?? 0.4;
  if (typeof k1 !== 'number' || !Number.isFinite(k1) || k1 < 0) throw new RangeError(`bm25 k1 must be a finite number >= 0, got ${JSON.stringify(k1)}`);
  if (typeof b !== 'number' || !Number.isFinite(b) || b < 0 || b > 1) throw new RangeError(`bm25 b must be a number in [0, 1], got ${JSON.stringify(b)}`);
  return { k1, b };
}

/** A head whose weights come from corpus statistics: `fit` must see the corpus before documents are weighed. */
export abstract class CorpusHead implements SparseHead {
  abstract readonly name: string;
  readonly needsHidden = false;
  protected stats?: TermStats;

  constructor(protected readonly dropped: ReadonlySet<number>) {}

  /** Learns N, df and avgdl from the corpus's token ids. */
  fit(docs: readonly (readonly number[])[]): void {
    this.stats = corpusStats(docs, this.dropped);
  }

  get termStats(): TermStats | undefined {
    return this.stats;
  }

  protected fitted(): TermStats {
    if (!this.stats) throw new Error(`sparse head '${this.name}' has no corpus statistics: call fit(corpus token ids) first`);
    return this.stats;
  }

  async weigh(input: HeadInput): Promise<LexicalWeights[]> {
    return input.inputIds.map((ids) => {
      const out: LexicalWeights = {};
      for (const [t, c] of termCounts(ids, this.dropped)) {
        const w = input.side === 'query' ? this.queryWeight(t, c) : this.documentWeight(t, c, ids);
        if (w > 0) out[String(t)] = w;
      }
      return out;
    });
  }

  protected abstract queryWeight(term: number, count: number): number;
  protected abstract documentWeight(term: number, count: number, ids: readonly number[]): number;

  dispose(): void {}
}

export class Bm25Head extends CorpusHead {
  readonly name = 'bm25';
  readonly k1: number;
  readonly b: number;
  private lengthOf = new WeakMap<readonly number[], number>();

  constructor(dropped: ReadonlySet<number>, opts: Bm25Options = {}) {
    super(dropped);
    ({ k1: this.k1, b: this.b } = checkBm25Options(opts));
  }

  protected queryWeight(_term: number, count: number): number {
    return count;
  }

  protected documentWeight(term: number, tf: number, ids: readonly number[]): number {
    const stats = this.fitted();
    let dl = this.lengthOf.get(ids);
    if (dl === undefined) {
      dl = 0;
      for (const id of ids) if (!this.dropped.has(id)) dl++;
      this.lengthOf.set(ids, dl);
    }
    return bm25Idf(stats, term) * tf / (tf + this.k1 * (1 - this.b + this.b * dl / stats.avgdl));
  }
}
