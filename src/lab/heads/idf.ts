/**
 * `idf`: the plainest lexical baseline. A document weighs each distinct term it contains by its
 * BM25 idf, ln(1 + (N − df + 0.5)/(df + 0.5)) (no term frequency, no length normalisation); a
 * query weighs each distinct term 1. The sparse dot product is then Σ over the distinct terms a
 * query and document share of idf(t): "how rare are the words they have in common". Terms and
 * statistics as in `bm25` (special ids dropped, N and df from the corpus given to `fit`).
 */
import { bm25Idf, CorpusHead } from './bm25.js';

export class IdfHead extends CorpusHead {
  readonly name = 'idf';

  protected queryWeight(): number {
    return 1;
  }

  protected documentWeight(term: number): number {
    return bm25Idf(this.fitted(), term);
  }
}
