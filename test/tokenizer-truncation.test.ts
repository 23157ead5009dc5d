/**
 * Bounded truncation (src/tokenizer/truncation.ts): `tokenize(text, { maxLength })` reads a prefix of a
 * long text, and must give exactly the ids of tokenizing the whole text and cutting (HF truncation).
 *   - the invariant itself, at every admissible cut of many hostile texts: the trusted ids of the prefix
 *     are a prefix of the whole text's ids;
 *   - the growth loop from tiny first prefixes, every room from 1 up;
 *   - the public `tokenize` on long texts against the whole-text ids and the Rust `tokenizers` reference;
 *   - that the prefix is what is tokenized (a spy on `explain` counts the characters it is handed);
 *   - configurations the argument does not cover tokenize the whole text.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { M3Tokenizer } from '../src/tokenizer.js';
import { boundedIds, findCut, prefixCutIsSafe, sectionIds, withoutLastWord } from '../src/tokenizer/truncation.js';

const FIX = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const MODELS = ['tiny-m3', 'small-m3', 'sharp-m3'] as const;
const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

type RustModule = typeof import('tokenizers');
let rustMod: RustModule | undefined;
try {
  rustMod = await import('tokenizers');
} catch (e) {
  console.warn(`Rust tokenizers binding unavailable, live comparisons skipped: ${String(e)}`);
}

/** Words and separators chosen to stress every pipeline stage at a cut. */
const WORDS = [
  'hello', 'naïve', 'Straße', '検索エンジン', '東京都', 'ﬁ', 'ﬃx', 'x\u0301\u0302', 'a\u0308', '\u0600\u0661', '\u0915\u094d\u0937',
  '👨‍👩‍👧', '🇫🇷🇩🇪🇫', '가나다', 'ранжирование', 'بحث', '▁x', '▁', '<mask>', '<s>', '</s>', '<unk>', '<pad>',
  'ＡＢＣ', '①', '\u200b', '㍻', 'don\'t', '2024.', '\uFEFF', 'x\u0300\u0300\u0300\u0300\u0300\u0300\u0300',
];
const SEPS = [
  ' ', ' ', ' ', '  ', ' '.repeat(40), '\t', '\n', '\r\n', '\r', '\u3000', '\u00a0', '\u0085', ' \u0301', '\u2028', '', '',
  ' <mask> ', '\u0600 ', ' \u200d ', '\n\n\n',
];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function hostileText(seed: number, words: number): string {
  const r = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  let t = r() < 0.3 ? pick(SEPS) : '';
  for (let i = 0; i < words; i++) t += pick(WORDS) + pick(SEPS);
  return t;
}

const tokenizers = MODELS.map((m) => [m, M3Tokenizer.fromDirSync(join(FIX, m))] as const);
const trusted = (tok: M3Tokenizer) => (prefix: string): number[] => sectionIds(withoutLastWord(tok.explain(prefix)));
const isPrefixOf = (a: readonly number[], b: readonly number[]): boolean => a.length <= b.length && a.every((x, i) => x === b[i]);

describe('bounded truncation', () => {
  it('the fixtures take the prefix path (their pipeline is the BGE-M3 one)', () => {
    for (const m of MODELS) {
      const json = JSON.parse(readFileSync(join(FIX, m, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
      const added = (json.added_tokens as Array<{ content: string }>).map((t) => t.content);
      expect(prefixCutIsSafe(json.normalizer, json.pre_tokenizer, added), m).toBe(true);
    }
  });

  it.each(tokenizers)('%s: at every admissible cut of hostile texts, the trusted ids are a prefix of the whole ids', (_, tok) => {
    let cuts = 0;
    let trustedTotal = 0;
    for (let seed = 1; seed <= 24; seed++) {
      const text = hostileText(seed, 60);
      const whole = tok.textIds(text);
      for (let c = findCut(text, 1, segmenter); c !== -1; c = findCut(text, c + 1, segmenter)) {
        const ids = trusted(tok)(text.slice(0, c));
        if (!isPrefixOf(ids, whole)) {
          throw new Error(`seed ${seed}, cut ${c}: ${JSON.stringify(text.slice(Math.max(0, c - 20), c + 20))}: ${ids.length} trusted ids are not a prefix`);
        }
        cuts++;
        trustedTotal += ids.length;
      }
    }
    expect(cuts).toBeGreaterThan(600);
    expect(trustedTotal).toBeGreaterThan(cuts); // the cuts do keep ids, not only empty prefixes
    console.log(`[truncation] ${cuts} cuts checked, ${trustedTotal} trusted ids in all`);
  });

  it('a cut is placed only where a cluster starts: never after a Prepend character or between CR and LF', () => {
    expect(findCut('ab \u0301c', 1, segmenter)).toBe(2); // " \u0301" is one cluster, which starts at the space
    expect(findCut('\u0600 x', 1, segmenter)).toBe(-1);
    expect(findCut('a\r\nb', 2, segmenter)).toBe(-1);
    expect(findCut('a\r\nb', 1, segmenter)).toBe(1);
    expect(findCut('abc def', 1, segmenter)).toBe(3);
    expect(findCut('abcdef', 1, segmenter)).toBe(-1);
  });

  it.each(tokenizers)('%s: the growth loop from tiny first prefixes gives the whole text\'s first ids for every room', (_, tok) => {
    let compared = 0;
    for (let seed = 100; seed < 112; seed++) {
      const text = hostileText(seed, 80);
      const whole = tok.textIds(text);
      for (const room of [1, 2, 3, 5, 8, 13, 21, 34, 55, whole.length - 1, whole.length, whole.length + 5]) {
        if (room < 1) continue;
        for (const minPrefix of [1, 7, 64]) {
          const ids = boundedIds(text, room, segmenter, trusted(tok), (t) => tok.textIds(t), minPrefix);
          expect(ids, `seed ${seed} room ${room} minPrefix ${minPrefix}`).toEqual(whole.slice(0, room));
          compared++;
        }
      }
    }
    console.log(`[truncation] ${compared} (text, room, first prefix) triples equal to the whole-text ids`);
  });

  it.each(tokenizers)('%s: tokenize(text, { maxLength }) of long texts equals the whole-text ids and Rust truncation', async (_, tok) => {
    const rust = rustMod?.Tokenizer.fromFile(join(FIX, _, 'tokenizer.json'));
    const texts = [
      hostileText(7, 3000),
      hostileText(8, 3000).replaceAll(' ', ''), // long words, few cuts
      '検索'.repeat(6000), // no whitespace at all: the whole text is one word
      `${'x'.repeat(9000)} tail words here`,
      `head ${' '.repeat(20000)}<mask> after`,
      Array.from({ length: 4000 }, (_, i) => `w${i}`).join(' '), // equal-length words
    ];
    let compared = 0;
    for (const text of texts) {
      const whole = tok.textIds(text);
      for (const maxLength of [2, 3, 16, 512, 1000, 8192]) {
        const room = maxLength - 2;
        const expected = [tok.bosId, ...whole.slice(0, room), tok.eosId];
        const ours = tok.tokenize(text, { maxLength }).inputIds;
        expect(ours, `${text.slice(0, 20)}… @${maxLength}`).toEqual(expected);
        if (rust !== undefined) {
          rust.setTruncation(maxLength);
          expect(ours, `${text.slice(0, 20)}… @${maxLength} (Rust)`).toEqual((await rust.encode(text)).getIds());
        }
        compared++;
      }
    }
    console.log(`[truncation] ${compared} long (text, maxLength) pairs equal to the whole-text ids${rust ? ' and to Rust' : ''}`);
  });

  it('only a prefix of a long text is tokenized when it is enough (a spy counts the characters)', () => {
    const tok = tokenizers[0][1];
    const text = hostileText(3, 60000); // ~400k characters
    const whole = tok.textIds(text);
    const spy = vi.spyOn(tok, 'explain');
    try {
      const ids = tok.tokenize(text, { maxLength: 512 }).inputIds;
      const handed = spy.mock.calls.reduce((n, [t]) => n + t.length, 0);
      expect(ids).toEqual([tok.bosId, ...whole.slice(0, 510), tok.eosId]);
      console.log(`[truncation] ${text.length} characters, ${handed} handed to the tokenizer for 512 ids`);
      expect(handed).toBeLessThan(text.length / 20);
      // a text without whitespace cannot be cut: it is read whole, and still right
      spy.mockClear();
      const noSpace = 'ab'.repeat(5000);
      expect(tok.tokenize(noSpace, { maxLength: 16 }).inputIds).toEqual([tok.bosId, ...tok.textIds(noSpace).slice(0, 14), tok.eosId]);
    } finally {
      spy.mockRestore();
    }
  });

  it('configurations the argument does not cover tokenize the whole text', () => {
    const meta = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true };
    const ok = { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] };
    expect(prefixCutIsSafe(ok, meta, ['<s>'])).toBe(true);
    expect(prefixCutIsSafe(null, meta, [])).toBe(true);
    expect(prefixCutIsSafe(ok, { ...meta, split: false }, [])).toBe(false);
    expect(prefixCutIsSafe(ok, { type: 'WhitespaceSplit' }, [])).toBe(false);
    expect(prefixCutIsSafe({ type: 'Strip' }, meta, [])).toBe(false);
    expect(prefixCutIsSafe({ type: 'Replace', pattern: { Regex: 'a b' }, content: 'c' }, meta, [])).toBe(false);
    expect(prefixCutIsSafe(ok, meta, ['two words'])).toBe(false);

    // a tokenizer with a Strip normalizer: tokenize hands the whole text over
    const json = JSON.parse(readFileSync(join(FIX, 'tiny-m3', 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
    const cfg = JSON.parse(readFileSync(join(FIX, 'tiny-m3', 'tokenizer_config.json'), 'utf8')) as unknown;
    const strip = new M3Tokenizer({ ...json, normalizer: { type: 'Sequence', normalizers: [json.normalizer, { type: 'Strip' }] } }, cfg);
    const spy = vi.spyOn(strip, 'explain');
    const text = 'word '.repeat(4000);
    strip.tokenize(text, { maxLength: 16 });
    expect(spy.mock.calls.map(([t]) => t.length)).toEqual([text.length]);
    spy.mockRestore();
  });
});
