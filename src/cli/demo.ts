/**
 * `bge-m3 demo [--model DIR] [--backend NAME]`: the FlagEmbedding README example, end to end.
 * Uses `weights/bge-m3` or BAAI/bge-m3 in the Hugging Face cache when there, otherwise the bundled tiny checkpoint
 * (random weights, and said so).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resolveModel } from '../hub/cache.js';
import { BUNDLED_CHECKPOINT, PACKAGE_ROOT } from '../package-files.js';
import { defineCommand } from './command.js';

export const USAGE = `Usage: bge-m3 demo [--model DIR] [--backend NAME]

Encodes the FlagEmbedding README sentences and prints dense similarities, lexical weights as tokens,
lexical-matching and ColBERT scores, and compute_score's combined scores. Without --model it uses
weights/bge-m3 or BAAI/bge-m3 in the Hugging Face cache when present, else the bundled tiny checkpoint
(random weights: the numbers then show the pipeline at work, not meaning).
`;

export const QUERIES = ['What is BGE M3?', 'Defination of BM25'];
export const PASSAGES = [
  'BGE M3 is an embedding model supporting dense retrieval, lexical matching and multi-vector interaction.',
  'BM25 is a bag-of-words retrieval function that ranks a set of documents based on the query terms appearing in each document',
];

export const REAL_WEIGHTS = join(PACKAGE_ROOT, 'weights', 'bge-m3');

const inHubCache = (repo: string): boolean => {
  try {
    return existsSync(join(resolveModel(repo).dir, 'config.json'));
  } catch {
    return false;
  }
};

const fmt = (x: number): string => x.toFixed(4);
const matrix = (m: number[][]): string => m.map((r) => `  [${r.map(fmt).join(', ')}]`).join('\n');

export const run = defineCommand({
  name: 'demo', usage: USAGE, positionals: false,
  options: { model: { type: 'string' }, backend: { type: 'string' } },
}, async ({ values, stdout, load }) => {
  const say = (s = ''): void => void stdout.write(`${s}\n`);
  let dir = values.model;
  if (!dir) {
    if (existsSync(join(REAL_WEIGHTS, 'config.json'))) dir = REAL_WEIGHTS;
    else if (inHubCache('BAAI/bge-m3')) dir = 'BAAI/bge-m3'; // where `bge-m3 download` (and Python) put it
    else {
      dir = BUNDLED_CHECKPOINT;
      say('NOTE: no real weights in weights/bge-m3 or the Hugging Face cache (get them with `npx -p bge-m3-tfjs bge-m3 download`),');
      say('so this runs the bundled tiny checkpoint.');
    }
  }
  if (resolve(dir) === resolve(BUNDLED_CHECKPOINT)) {
    say('The bundled checkpoint (2 layers, hidden 32) has RANDOM weights: the numbers below show the pipeline at work, not meaning.');
    say();
  }
  const t0 = Date.now();
  const m3 = await load(dir);
  say(`model: ${dir} (${m3.config.num_hidden_layers} layers, hidden ${m3.config.hidden_size}), loaded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  try {
    const all = { returnDense: true, returnSparse: true, returnColbert: true };
    const q = await m3.encode(QUERIES, { ...all, maxLength: 10 });
    const p = await m3.encode(PASSAGES, { ...all, maxLength: 100 });
    say('\nqueries:');
    QUERIES.forEach((s, i) => say(`  q${i}: ${s}`));
    say('passages:');
    PASSAGES.forEach((s, i) => say(`  p${i}: ${s}`));
    say('\ndense similarity (q · p):');
    say(matrix(q.denseVecs!.map((a) => p.denseVecs!.map((b) => m3.denseScore(a, b)))));
    say('\nlexical weights as tokens:');
    [...QUERIES.map((_, i) => [`q${i}`, q.lexicalWeights![i]!] as const), ...PASSAGES.map((_, i) => [`p${i}`, p.lexicalWeights![i]!] as const)]
      .forEach(([name, lw]) => {
        const tokens = Object.entries(m3.convertIdToToken(lw)).sort((a, b) => b[1] - a[1]).slice(0, 8);
        say(`  ${name}: ${tokens.map(([t, w]) => `${JSON.stringify(t)}: ${fmt(w)}`).join(', ')}${Object.keys(lw).length > 8 ? ', …' : ''}`);
      });
    say('\nlexical matching score (q · p):');
    say(matrix(q.lexicalWeights!.map((a) => p.lexicalWeights!.map((b) => m3.computeLexicalMatchingScore(a, b)))));
    say('\nColBERT score (q · p):');
    say(matrix(q.colbertVecs!.map((a) => p.colbertVecs!.map((b) => m3.colbertScore(a, b)))));
    say(`  (ColBERT vectors: ${[...q.colbertVecs!, ...p.colbertVecs!].map((c) => `${c.rows}×${c.dim}`).join(', ')})`);
    const pairs = QUERIES.flatMap((a) => PASSAGES.map((b) => [a, b] as [string, string]));
    const s = await m3.computeScore(pairs, { maxPassageLength: 128, weightsForDifferentModes: [0.4, 0.2, 0.4] });
    say('\ncompute_score, weights [0.4, 0.2, 0.4] (pairs q0p0, q0p1, q1p0, q1p1):');
    for (const [k, v] of Object.entries(s)) say(`  ${k.padEnd(22)} ${v.map(fmt).join('  ')}`);
  } finally {
    m3.dispose();
  }
  return 0;
});
