/**
 * A small BEIR-layout retrieval set made by the tests, where relevance is carried by shared rare
 * tokens: each topic owns three words that are single tokens of the fixture vocabulary; its query
 * names two of them, its grade-2 document carries those two, its grade-1 document one of them and
 * the third; every text is padded with common filler words, and noise documents carry only filler
 * and words of no topic. Lexical baselines should nearly solve it; random-weight heads see the
 * same tokens, so their metrics measure what their weights make of them.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { M3Tokenizer } from '../../src/tokenizer.js';
import { mulberry32 as rng } from '../../src/rng.js';

/** Lower-case words of four letters or more that the tokenizer keeps as one token, in id order. */
export function singleTokenWords(tok: M3Tokenizer): string[] {
  const out: string[] = [];
  for (let id = 4; id < tok.vocabSize; id++) {
    const w = tok.decodeId(id);
    if (/^[a-z]{4,}$/.test(w) && tok.tokenize(w, { maxLength: 16 }).inputIds.length === 3) out.push(w);
  }
  return out;
}

const FILLER = ['the', 'of', 'and', 'that', 'with', 'for', 'from', 'this', 'have', 'are'];

export interface SyntheticSet {
  readonly dir: string;
  readonly topics: number;
  readonly documents: number;
}

/** Writes corpus.jsonl, queries.jsonl and qrels/test.tsv under `dir`. */
export function makeSyntheticBeir(dir: string, tok: M3Tokenizer, opts: { topics?: number; noise?: number; seed?: number } = {}): SyntheticSet {
  const topics = opts.topics ?? 24;
  const noise = opts.noise ?? 24;
  const r = rng(opts.seed ?? 7);
  const words = singleTokenWords(tok).filter((w) => !FILLER.includes(w));
  // Spread the picks over the vocabulary (a deterministic shuffle).
  for (let i = words.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [words[i], words[j]] = [words[j]!, words[i]!];
  }
  if (words.length < topics * 3 + 20) throw new Error(`only ${words.length} single-token words in the fixture vocabulary`);
  const filler = (n: number) => Array.from({ length: n }, () => FILLER[Math.floor(r() * FILLER.length)]!);
  const sentence = (rare: string[], n: number) => {
    const ws = filler(n);
    for (const w of rare) ws.splice(Math.floor(r() * (ws.length + 1)), 0, w);
    return ws.join(' ');
  };
  const noiseWords = words.slice(topics * 3);
  const corpus: Array<{ _id: string; title?: string; text: string }> = [];
  const queries: Array<{ _id: string; text: string }> = [];
  const qrels: string[] = ['query-id\tcorpus-id\tscore'];
  for (let t = 0; t < topics; t++) {
    const [a, b, c] = words.slice(t * 3, t * 3 + 3) as [string, string, string];
    corpus.push(t % 2 ? { _id: `t${t}-a`, title: a, text: sentence([b], 8) } : { _id: `t${t}-a`, text: sentence([a, b], 8) });
    corpus.push({ _id: `t${t}-b`, text: sentence([b, c], 10) });
    queries.push({ _id: `q${t}`, text: sentence([a, b], 2) });
    qrels.push(`q${t}\tt${t}-a\t2`, `q${t}\tt${t}-b\t1`);
  }
  for (let n = 0; n < noise; n++) corpus.push({ _id: `noise-${n}`, text: sentence([noiseWords[n % noiseWords.length]!], 9) });
  // Two judged queries without a relevant document: evaluation skips them.
  queries.push({ _id: 'q-none-1', text: sentence([noiseWords[0]!], 2) }, { _id: 'q-none-2', text: sentence([], 3) });
  qrels.push('q-none-1\tnoise-0\t0', 'q-none-2\tnoise-1\t0');
  for (let i = corpus.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [corpus[i], corpus[j]] = [corpus[j]!, corpus[i]!];
  }
  mkdirSync(join(dir, 'qrels'), { recursive: true });
  writeFileSync(join(dir, 'corpus.jsonl'), corpus.map((d) => JSON.stringify(d)).join('\n') + '\n');
  writeFileSync(join(dir, 'queries.jsonl'), queries.map((q) => JSON.stringify(q)).join('\n') + '\n');
  writeFileSync(join(dir, 'qrels', 'test.tsv'), qrels.join('\n') + '\n');
  return { dir, topics, documents: corpus.length };
}
