/**
 * Bench: the cost of one long document truncated to `maxLength` tokens (issue 18 item 7).
 *
 *   npx tsx scripts/bench-truncation.ts [--mb 20] [--max-length 8192] [--model DIR] [--full]
 *
 * Builds a deterministic multilingual document of `--mb` MB (UTF-16 code units × 2, like a JS string in
 * memory), tokenizes it once with `tokenize(text, { maxLength })` and prints the time and the process's peak
 * RSS. `--full` measures what truncation cost before it was bounded (tokenize everything, then cut), for a
 * before/after comparison; run each in its own process, since peak RSS is per process.
 */
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { M3Tokenizer } from '../src/tokenizer.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    mb: { type: 'string', default: '20' },
    'max-length': { type: 'string', default: '8192' },
    model: { type: 'string', default: join(ROOT, 'test/fixtures/tiny-m3') },
    full: { type: 'boolean', default: false },
  },
});
const chars = Math.round(Number(values.mb) * 1e6 / 2);
const maxLength = Number(values['max-length']);

const WORDS = ['the', 'retrieval', 'modèle', 'Straße', 'naïve', '検索', 'ранжирование', 'بحث', 'café', '2024', 'x̧̃', '😀', 'αβγ'];
let seed = 1;
const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const parts: string[] = [];
let n = 0;
while (n < chars) {
  const w = WORDS[Math.floor(rand() * WORDS.length)]!;
  const sep = rand() < 0.05 ? '\n' : ' ';
  parts.push(w, sep);
  n += w.length + 1;
}
const text = parts.join('').slice(0, chars);
parts.length = 0;

const tok = M3Tokenizer.fromDirSync(values.model);
const rssBefore = process.resourceUsage().maxRSS;
const t0 = performance.now();
const ids = values.full ? tok.textIds(text).slice(0, maxLength - tok.numSpecialTokens) : tok.tokenize(text, { maxLength }).inputIds;
const ms = performance.now() - t0;
const peakMb = process.resourceUsage().maxRSS / 1024;
console.log(
  `${values.full ? 'whole text, then cut' : 'bounded truncation'}: ${(text.length * 2 / 1e6).toFixed(1)} MB document, ` +
    `maxLength ${maxLength}: ${ids.length} ids in ${(ms / 1000).toFixed(3)} s, peak RSS ${peakMb.toFixed(0)} MB ` +
    `(${(rssBefore / 1024).toFixed(0)} MB before tokenizing)`,
);
