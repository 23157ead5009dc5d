/**
 * What the real BGE-M3 gives where a published figure exists: FlagEmbedding's README runs
 * `BAAI/bge-m3` (float16, on a GPU) on two queries and two passages and prints these numbers (4
 * digits). The notebooks show them next to the fixture's, labelled as the real model's, and notebook 5
 * compares with them when the real weights are loaded. One home for them: import, do not copy.
 */
import * as tslab from 'tslab';
import { markdownTable } from './markdown';

export const PUBLISHED_SOURCE = "FlagEmbedding's README (github.com/FlagOpen/FlagEmbedding, BGE-M3 usage), BAAI/bge-m3 in float16";

export const PUBLISHED = {
  queries: ['What is BGE M3?', 'Defination of BM25'], // sic: the README's spelling, kept so the tokens match
  passages: [
    'BGE M3 is an embedding model supporting dense retrieval, lexical matching and multi-vector interaction.',
    'BM25 is a bag-of-words retrieval function that ranks a set of documents based on the query terms appearing in each document',
  ],
  /** queries × passages */
  dense: [[0.6265, 0.3477], [0.3499, 0.678]],
  /** query 1 · passage 1 */
  lexicalScore: 0.19554901123046875,
  /** query 1 · query 2: they share no token, so the lexical score is exactly 0 */
  lexicalScoreQueries: 0,
  /** query 1 · passages 1 and 2 */
  colbert: [0.7797, 0.462],
  /** each query's lexical weights by token text (`convert_id_to_token`) */
  lexicalWeights: [
    { What: 0.08356, is: 0.0814, B: 0.1296, GE: 0.252, M: 0.1702, '3': 0.2695, '?': 0.04092 },
    { De: 0.05005, fin: 0.1368, ation: 0.04498, of: 0.0633, BM: 0.2515, '25': 0.3335 },
  ] as Array<Record<string, number>>,
  /** float16 on their side and 4 printed digits: how close a float32 run can be expected to come */
  tolerance: 5e-3,
};

/**
 * A boxed note (a Markdown quote, one bullet per item) saying what changes with the real weights: shown by each notebook
 * in fixture mode, so the random checkpoint's numbers are not read as BGE-M3's.
 */
export function realWeightsBox(items: string[]): void {
  tslab.display.markdown(['> **What changes with the real weights**', '>', ...items.map((l) => `> - ${l}`)].join('\n'));
}

/** The real model's lexical weights for query `i` beside what the loaded weights give for the same text. */
export function lexicalWeightsBesideReal(i: number, ours: Record<string, number>, oursLabel: string): void {
  const real = PUBLISHED.lexicalWeights[i]!;
  const tokens = [...new Set([...Object.keys(real), ...Object.keys(ours)])];
  tslab.display.markdown(
    `Lexical weights of *"${PUBLISHED.queries[i]}"*: **the real model gives** (${PUBLISHED_SOURCE}) and ${oursLabel} gives:\n\n` +
    markdownTable(tokens.map((t) => ({ token: t, 'BGE-M3 (published)': real[t] ?? '', [oursLabel]: ours[t] ?? '' }))),
  );
}
