/**
 * A synthetic retrieval set for training tests, made from token ids (no tokenizer): relevance is
 * carried by shared rare tokens, while frequent "stopword" tokens appear everywhere in varying
 * numbers and make an untrained lexical head rank irrelevant documents high.
 */
import { lexicalMatchingScore, type LexicalWeights } from '../../src/scores.js';
import type { SparseHead } from '../../src/lab/heads/head.js';
import { evaluateRun, type Metrics } from '../../src/lab/metrics.js';
import { padHidden, type HiddenSource } from '../../src/lab/hidden-source.js';
import { rng, type TrainExample } from '../../src/lab/train.js';

export interface SyntheticSet {
  /** Text id ('q3', 'd17') -> `<s> … </s>` ids. */
  readonly texts: Map<string, number[]>;
  readonly docIds: string[];
  readonly train: TrainExample[];
  /** Held-out queries and their one relevant document. */
  readonly heldOut: { queryId: string; docId: string }[];
}

export function syntheticSet(opts: { docs: number; trainQueries: number; seed: number; vocab: number }): SyntheticSet {
  const rand = rng(opts.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const STOP = Array.from({ length: 8 }, (_, i) => 10 + i); // frequent tokens
  const rarePool = Array.from({ length: opts.vocab - 1000 - 10 }, (_, i) => 1000 + i);
  const texts = new Map<string, number[]>();
  const docRare: number[][] = [];
  const docIds: string[] = [];
  for (let d = 0; d < opts.docs; d++) {
    const rare = Array.from({ length: 4 }, () => pick(rarePool));
    const stop = Array.from({ length: 12 }, () => pick(STOP));
    docRare.push(rare);
    const body = [...rare, ...stop].sort(() => rand() - 0.5);
    texts.set(`d${d}`, [0, ...body, 2]);
    docIds.push(`d${d}`);
  }
  const train: TrainExample[] = [];
  const heldOut: { queryId: string; docId: string }[] = [];
  for (let d = 0; d < opts.docs; d++) {
    const rare = docRare[d]!;
    const body = [rare[0]!, rare[1 + Math.floor(rand() * 3)]!, ...Array.from({ length: 6 }, () => pick(STOP))].sort(() => rand() - 0.5);
    texts.set(`q${d}`, [0, ...body, 2]);
    if (d < opts.trainQueries) {
      // Hard negatives: two other documents (they share stopwords only).
      train.push({ queryId: `q${d}`, positiveId: `d${d}`, negativeIds: [`d${(d + 1) % opts.docs}`, `d${(d + 7) % opts.docs}`] });
    } else {
      heldOut.push({ queryId: `q${d}`, docId: `d${d}` });
    }
  }
  return { texts, docIds, train, heldOut };
}

/** Lexical weights of each id through `head`, one text at a time (hidden states only for heads that read them). */
export async function weighAll(head: SparseHead, source: HiddenSource, ids: readonly string[], side: 'query' | 'document'): Promise<Map<string, LexicalWeights>> {
  const out = new Map<string, LexicalWeights>();
  for (const id of ids) {
    const b = padHidden([await source.get(id)], source.hiddenSize);
    const [w] = await head.weigh({ inputIds: b.inputIds, hidden: head.needsHidden ? b.hidden : undefined, side });
    b.hidden.dispose();
    out.set(id, w!);
  }
  return out;
}

/** nDCG@10, MRR@10, Recall@100, MAP of the held-out queries, every document scored (brute force). */
export async function heldOutMetrics(head: SparseHead, source: HiddenSource, set: SyntheticSet): Promise<Metrics> {
  if (head.fit) head.fit(await Promise.all(set.docIds.map(async (d) => [...(await source.get(d)).inputIds])));
  const docs = await weighAll(head, source, set.docIds, 'document');
  const queries = await weighAll(head, source, set.heldOut.map((h) => h.queryId), 'query');
  const run = new Map(set.heldOut.map(({ queryId }) => [queryId, set.docIds.map((d) => ({ id: d, score: lexicalMatchingScore(queries.get(queryId)!, docs.get(d)!) }))]));
  const qrels = new Map(set.heldOut.map(({ queryId, docId }) => [queryId, new Map([[docId, 1]])]));
  return evaluateRun(run, qrels).mean;
}
