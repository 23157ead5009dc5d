/**
 * Explanations of BGE-M3's scores, token by token:
 *   - `explainLexicalMatch`: which tokens the sparse (lexical) score is made of, and how much each adds;
 *   - `explainColbert`: which passage vector each query vector matched in ColBERT's max-sim;
 *   - `explainTokenWeights`: the sparse head's weight of every token of a text, position by position.
 */
import { colbertPosition } from './heads/colbert.js';
import { unusedTokenIds } from './heads/sparse.js';
import type { BgeM3, Inputs } from './m3.js';
import { colbertScore, colbertSimilarity, denseScore, lexicalMatchingScore, type ColbertVecs, type LexicalWeights } from './scores.js';
import type { M3Tokenizer } from './tokenizer.js';

/** One token of a text with its sparse weight. */
export interface TokenWeight {
  /** Position in the input ids (0 is `<s>`). */
  position: number;
  id: number;
  /** Vocabulary piece, e.g. `▁hello`. */
  token: string;
  /** Text of the token alone (as `decode([id])`), the key FlagEmbedding's `convert_id_to_token` uses. */
  text: string;
  /** `sparse_head.hook_out` at this position: relu(sparse_linear(h)). */
  weight: number;
  /** `<s>`, `</s>`, `<pad>` or `<unk>`: never part of the lexical weights. */
  special: boolean;
}

/** One token id present in both texts' lexical weights. */
export interface LexicalMatchTerm {
  id: number;
  token: string;
  text: string;
  queryWeight: number;
  passageWeight: number;
  /** queryWeight · passageWeight */
  contribution: number;
}

export interface LexicalMatchExplanation {
  /** `lexicalMatchingScore(q, p)`, summed in the same order, so it is equal to the bit. */
  score: number;
  /** Shared tokens, largest contribution first (ties: smaller id first). */
  terms: LexicalMatchTerm[];
  /** Tokens with a weight in only one of the texts. */
  queryOnly: number;
  passageOnly: number;
}

/** Query vector i matched passage vector `passageIndex` with this similarity (its row maximum). */
export interface ColbertMatch {
  queryIndex: number;
  passageIndex: number;
  similarity: number;
}

export interface ColbertExplanation {
  /** Mean of the matches' similarities: ColBERT's max-sim score. */
  score: number;
  /** One per query vector, in order. */
  matches: ColbertMatch[];
  queryRows: number;
  passageRows: number;
  /** Dot products of every query vector with every passage vector, [queryRows, passageRows] row-major. */
  similarity: Float32Array;
}

export { colbertPosition };

/**
 * A token's vocabulary piece and its text alone, as the Metaspace decoder gives it for `decode([id])`:
 * '▁' becomes a space and the leading space is dropped (the keys of `convertIdToToken`).
 */
function describeId(tok: M3Tokenizer, id: number): { token: string; text: string } {
  const token = tok.idToToken(id);
  const text = token.replace(/\u2581/g, ' ');
  return { token, text: text.startsWith(' ') ? text.slice(1) : text };
}

/**
 * The shared tokens of two lexical-weight dicts and what each adds to the sparse score. The score is
 * summed in the order `lexicalMatchingScore` uses (the query's keys), so `score` equals it exactly;
 * the terms are then sorted by contribution.
 */
export function explainLexicalMatch(m3: Pick<BgeM3, 'tokenizer'>, q: LexicalWeights, p: LexicalWeights): LexicalMatchExplanation {
  const terms: LexicalMatchTerm[] = [];
  let score = 0;
  let queryOnly = 0;
  for (const [key, wq] of Object.entries(q)) {
    const wp = p[key];
    if (wp === undefined) {
      queryOnly++;
      continue;
    }
    const id = Number(key);
    const contribution = wq * wp;
    score += contribution;
    terms.push({ id, ...describeId(m3.tokenizer, id), queryWeight: wq, passageWeight: wp, contribution });
  }
  const passageOnly = Object.keys(p).length - terms.length;
  terms.sort((a, b) => b.contribution - a.contribution || a.id - b.id);
  return { score, terms, queryOnly, passageOnly };
}

/**
 * ColBERT's max-sim taken apart: the similarity of every query vector with every passage vector
 * (`colbertSimilarity`, as `colbertScore` takes it), each query vector's best passage vector (first on ties)
 * and the score as the mean of those maxima.
 */
export function explainColbert(q: ColbertVecs, p: ColbertVecs): ColbertExplanation {
  const [R, C] = [q.rows, p.rows];
  const similarity = colbertSimilarity(q, p, 'explainColbert'); // [R, C]
  if (R === 0 || C === 0) return { score: 0, matches: [], queryRows: R, passageRows: C, similarity };
  const matches: ColbertMatch[] = [];
  let sum = 0;
  for (let i = 0; i < R; i++) {
    let best = 0;
    for (let j = 1; j < C; j++) if (similarity[i * C + j]! > similarity[i * C + best]!) best = j;
    const s = similarity[i * C + best]!;
    matches.push({ queryIndex: i, passageIndex: best, similarity: s });
    sum += s;
  }
  return { score: sum / R, matches, queryRows: R, passageRows: C, similarity };
}

/** Token weights of one text from its ids and per-position sparse weights. */
export function tokenWeightsOf(tok: M3Tokenizer, inputIds: readonly number[], weights: ArrayLike<number>): TokenWeight[] {
  const special = unusedTokenIds(tok);
  return inputIds.map((id, position) => ({
    position, id, ...describeId(tok, id), weight: weights[position]!, special: special.has(id),
  }));
}

/**
 * The sparse weight of every token of each text (`sparse_head.hook_out`, after ReLU), read from
 * `runWithCache`. Texts are truncated to `maxLength` tokens (default 8192).
 */
export async function explainTokenWeights(m3: BgeM3, inputs: Inputs, opts: { maxLength?: number } = {}): Promise<TokenWeight[][]> {
  const { output, cache } = await m3.runWithCache(inputs, { names: ['sparse_head.hook_out'], maxLength: opts.maxLength });
  try {
    const w = cache.get('sparse_head.hook_out'); // [B, T]
    const T = w.shape[1]!;
    const data = (await w.data()) as Float32Array;
    return output.inputIds.map((ids, b) => tokenWeightsOf(m3.tokenizer, ids, data.subarray(b * T, b * T + ids.length)));
  } finally {
    cache.dispose();
  }
}

/** Every explanation of one (query, passage) pair. */
export interface PairExplanation {
  scores: { dense: number; sparse: number; colbert: number };
  lexical: LexicalMatchExplanation;
  colbert: ColbertExplanation;
  query: TokenWeight[];
  passage: TokenWeight[];
}

/**
 * Encodes a query and a passage (as `computeScore`: the query truncated to `maxQueryLength`, default 512,
 * the passage to `maxPassageLength`, default 8192 or the model's own smaller limit) and explains their sparse and ColBERT scores.
 */
export async function explainPair(
  m3: BgeM3, query: string, passage: string, opts: { maxQueryLength?: number; maxPassageLength?: number } = {},
): Promise<PairExplanation> {
  const run = async (text: string, maxLength: number) => {
    const { output, cache } = await m3.runWithCache([text], { names: ['sparse_head.hook_out'], maxLength });
    try {
      const ids = output.inputIds[0]!;
      const w = (await cache.get('sparse_head.hook_out').data()) as Float32Array; // [1, T]
      return { output, tokens: tokenWeightsOf(m3.tokenizer, ids, w) };
    } finally {
      cache.dispose();
    }
  };
  const q = await run(query, opts.maxQueryLength ?? Math.min(512, m3.maxLength));
  const p = await run(passage, opts.maxPassageLength ?? m3.defaultMaxLength);
  const [qo, po] = [q.output, p.output];
  return {
    scores: {
      dense: denseScore(qo.denseVecs![0]!, po.denseVecs![0]!),
      sparse: lexicalMatchingScore(qo.lexicalWeights![0]!, po.lexicalWeights![0]!),
      colbert: colbertScore(qo.colbertVecs![0]!, po.colbertVecs![0]!),
    },
    lexical: explainLexicalMatch(m3, qo.lexicalWeights![0]!, po.lexicalWeights![0]!),
    colbert: explainColbert(qo.colbertVecs![0]!, po.colbertVecs![0]!),
    query: q.tokens,
    passage: p.tokens,
  };
}
