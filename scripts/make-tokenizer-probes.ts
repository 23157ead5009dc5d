/**
 * Generates test/fixtures/tokenizer-probes.jsonl: extra tokenizer probe strings (deterministic, seeded)
 * with the ids the Rust HF `tokenizers` library (devDependency `tokenizers`) gives for them, so the
 * parity test does not need anything but this file.
 *
 *   npx tsx scripts/make-tokenizer-probes.ts [--check]
 *
 * Each line: {"id", "category", "text", "input_ids", "truncated"?}
 *   input_ids  Rust ids without truncation (the tokenizer.json has none), `<s> … </s>` included
 *   truncated  {"<max_length>": ids} with Rust truncation (right, longest-first) — for the long probes
 * `--check` regenerates in memory and fails if the file differs (used to prove determinism).
 *
 * The strings are JSON-escaped, so lone surrogates survive (JSON.stringify writes them as \udXXX).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '../src/rng.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TOKENIZER = join(ROOT, 'test/fixtures/tiny-m3/tokenizer.json');
const OUT = join(ROOT, 'test/fixtures/tokenizer-probes.jsonl');
export const TRUNCATION_LENGTHS = [2, 3, 16, 64, 512] as const;

// ---------------------------------------------------------------------------------------------------------
// deterministic randomness (mulberry32, src/rng.ts)
// ---------------------------------------------------------------------------------------------------------

const SEED = 0x6d3b6e;
let rand = mulberry32(SEED);
const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const range = (lo: number, hi: number): string[] => {
  const out: string[] = [];
  for (let c = lo; c <= hi; c++) out.push(String.fromCodePoint(c));
  return out;
};
const randChars = (pool: readonly string[], lo: number, hi: number): string => {
  let s = '';
  const n = int(lo, hi);
  for (let i = 0; i < n; i++) s += pick(pool);
  return s;
};

// ---------------------------------------------------------------------------------------------------------
// material
// ---------------------------------------------------------------------------------------------------------

const WORDS: Record<string, string[]> = {
  latin: ['café', 'naïve', 'résumé', 'Straße', 'über', 'größer', 'São', 'Paulo', 'año', 'niño', 'Ångström', 'Łódź', 'Dvořák', 'Þór', 'œuvre', 'façade', 'jalapeño', 'coöperate', 'İstanbul', 'ğüşıöç', 'the', 'quick', 'brown', 'fox', 'search', 'engine', 'embedding', 'model', 'Hello', 'WORLD'],
  cjk: ['北京', '中华人民共和国', '检索', '模型', '数据', '嵌入', '稠密', '词汇', '匹配', '世界', '你好', '首都', '機械学習', '龍'],
  kana: ['すもも', 'もも', 'ひらがな', 'カタカナ', 'トウキョウ', 'ありがとう', 'ヴァイオリン', 'ｶﾀｶﾅ', 'ｶﾞｷﾞｸﾞ', 'ゔ', 'ー'],
  hangul: ['서울', '대한민국', '수도', '한국어', '안녕하세요', '감사합니다', '가장', '큰', '도시'],
  arabic: ['القاهرة', 'مرحبا', 'بالعالم', 'عاصمة', 'مصر', 'كِتَابٌ', 'مُحَمَّد', 'اللّٰه', 'ﻻ', 'ﷺ'],
  hebrew: ['שלום', 'עולם', 'ירושלים', 'בְּרֵאשִׁית', 'תּוֹרָה'],
  devanagari: ['नमस्ते', 'दुनिया', 'भारत', 'राजधानी', 'दिल्ली', 'क्षत्रिय', 'हिन्दी', 'ज़िंदगी'],
  thai: ['สวัสดี', 'ประเทศไทย', 'กรุงเทพมหานคร', 'ภาษาไทย', 'น้ำ'],
  cyrillic: ['Москва', 'столица', 'России', 'привет', 'мир', 'ёлка', 'ЁЖИК', 'Їжак', 'ґанок', 'й'],
  greek: ['Αθήνα', 'καλημέρα', 'ΟΔΥΣΣΕΥΣ', 'λόγος', 'ψυχή', 'ΐ', 'ς'],
};

const CHARS: Record<string, string[]> = {
  latin: range(0xc0, 0x17f).concat(range(0x41, 0x5a), range(0x61, 0x7a)),
  cjk: range(0x4e00, 0x4fff).concat(range(0x5b57, 0x5b9f), range(0x9f8d, 0x9fa5)),
  kana: range(0x3041, 0x3096).concat(range(0x30a1, 0x30fa), range(0xff66, 0xff9f)),
  hangul: range(0xac00, 0xac40).concat(range(0xb098, 0xb0c0), range(0xd558, 0xd570)),
  jamo: range(0x1100, 0x1112).concat(range(0x1161, 0x1175), range(0x11a8, 0x11c2), range(0x3131, 0x318e)),
  arabic: range(0x621, 0x64a).concat(range(0x64b, 0x652), range(0xfe70, 0xfefc)),
  hebrew: range(0x5d0, 0x5ea).concat(range(0x5b0, 0x5bc)),
  devanagari: range(0x905, 0x939).concat(range(0x93e, 0x94d), ['\u0964', '\u0966']),
  thai: range(0xe01, 0xe3a).concat(range(0xe40, 0xe4e)),
  cyrillic: range(0x400, 0x45f),
  greek: range(0x386, 0x3ce).concat(range(0x1f00, 0x1f15)),
};

const EMOJI = [
  '😀', '🍕', '☕', '❤️', '❤', '👍', '👍🏽', '👍🏿', '🧑🏻‍💻', '👨‍👩‍👧‍👦', '👩‍❤️‍💋‍👨', '🏳️‍🌈', '🏴‍☠️', '🇩🇪', '🇯🇵', '🇺🇸',
  '🇩🇪🇯🇵', '🇦', '1️⃣', '#️⃣', '©️', '™️', '🦩', '🪼', '🫠', '👁‍🗨', '🏃‍♀️', '🤷🏼‍♂️', '🏴󠁧󠁢󠁳󠁣󠁴󠁿', '✌︎', '☺', '⚡',
];

const WHITESPACE = [' ', ' ', ' ', '  ', '   ', '\t', '\n', '\r\n', '\r', '\u00a0', '\u3000', '\u200b', '\u200d', '\u200c', '\ufeff', '\u2028', '\u2029', '\u0085', '\u1680', '\u2002', '\u2009', '\u202f', '\u205f', '\u000b', '\u000c', '\u2581', ' \u2581 ', '\u180e'];

const NFKC = ['Ｆｕｌｌｗｉｄｔｈ', 'ＡＢＣ', '１２３', 'ﬁ', 'ﬂ', 'ﬀ', 'ﬃ', 'ﬄ', 'ﬅ', 'ﬆ', '①', '②', '⑳', '㉑', '㊿', '⓪', 'Ⅻ', 'ⅷ', '㍻', '㍼', '㌔', '㌢', '㎏', '㎞', '㏄', '⁰', '¹', '²', '³', '⁴', '⁹', '₀', '₉', 'ᵃ', 'ⁿ', '½', '¼', '⅞', '™', '℃', '℉', 'ℌ', 'ℍ', 'Å', 'Ω', 'K', 'ﾊﾟ', 'ﾊﾞ', 'ｶﾞ', 'ｶ\uff9e', '〜', '～', 'ｘ～ｙ', 'µ', 'ſ', 'ǆ', 'Ǳ', '…', '‥', '′′', '″', 'ℓ', '№', '⒜', '⑴', '⒈', '🄰', '𝐀𝐁𝐂', '𝔘𝔫𝔦', '𝟘𝟙𝟚', 'ｶﾞｰﾙ', '\u3099', 'か\u3099', 'ｈｅｌｌｏ\u3000ｗｏｒｌｄ', '＜ｓ＞', '＜unk＞', '＜ｍａｓｋ＞', '＜/s＞', '<ｓ>'];

const COMBINING = ['\u0301', '\u0300', '\u0308', '\u0303', '\u0327', '\u030a', '\u0323', '\u0331', '\u034f', '\u0336', '\u20dd', '\u20e3', '\ufe0f', '\ufe0e', '\u200d', '\u0670', '\u064b', '\u05bc', '\u093c', '\u0e31', '\u1ab0', '\u1dc0', '\u0345'];

const CONTROL = [...range(0x00, 0x08), '\u000e', '\u001b', '\u001f', '\u007f', '\u0080', '\u008f', '\u009f', '\u00ad', '\u061c', '\u200e', '\u200f', '\u202a', '\u202e', '\u2060', '\u2066', '\ufff9', '\ufffc', '\ufffd', '\ue000', '\uf8ff', '\u{e0001}', '\u{f0000}'];

const SPECIALS = ['<s>', '</s>', '<pad>', '<unk>', '<mask>'];

// ---------------------------------------------------------------------------------------------------------
// probe list
// ---------------------------------------------------------------------------------------------------------

interface Probe {
  id: string;
  category: string;
  text: string;
}

function handWritten(): Probe[] {
  const list: Array<[string, string]> = [
    // added tokens and their lstrip/whitespace handling
    ['special', '<s>'], ['special', '</s>'], ['special', '<pad>'], ['special', '<unk>'], ['special', '<mask>'],
    ['special', '<s></s><pad><unk><mask>'], ['special', 'a<mask>b'], ['special', 'a <mask> b'], ['special', 'a   <mask>   b'],
    ['special', 'a\t\n <mask>'], ['special', '<mask>'.repeat(3)], ['special', ' <mask> <mask> '], ['special', '  <s>  '],
    ['special', 'x<s>y</s>z'], ['special', '<<s>>'], ['special', '</s</s>>'], ['special', '<mas<mask>k>'], ['special', '<MASK> <Mask>'],
    ['special', 'a\u00a0<mask>'], ['special', 'a\u3000<mask>'], ['special', 'a\u2028<mask>'], ['special', 'a\u0085<mask>'],
    ['special', 'a\ufeff<mask>'], ['special', 'a\u200b<mask>'], ['special', 'a\u180e<mask>'], ['special', 'a\u001f<mask>'],
    ['special', '\u0085<mask>'], ['special', '\ufeff<mask>'], ['special', 'x \ufeff <mask>'], ['special', '<s> \u0085<mask>'],
    ['special', '＜unk＞'], ['special', '＜unk＞𓀀'], ['special', '𓀀＜unk＞'], ['special', '＜unk＞＜unk＞'], ['special', 'a＜unk＞b'],
    ['special', '＜s＞ ＜/s＞ ＜pad＞ ＜mask＞'], ['special', '＜mask＞'], ['special', '<unk\u200b>'],
    // whitespace
    ['whitespace', ' '], ['whitespace', '  '], ['whitespace', '\t'], ['whitespace', '\n\n\n'], ['whitespace', '\r\n'],
    ['whitespace', '\u00a0'], ['whitespace', '\u3000'], ['whitespace', '\u200b'], ['whitespace', '\u200d'], ['whitespace', '\ufeff'],
    ['whitespace', 'a\u200bb'], ['whitespace', 'a\u200db'], ['whitespace', 'a\u200cb'], ['whitespace', 'a\ufeffb'], ['whitespace', 'a\u00a0\u00a0b'],
    ['whitespace', 'a\u3000\u3000b'], ['whitespace', 'a \u200b b'], ['whitespace', '\u200b\u200b\u200b'], ['whitespace', 'a\u2581b'],
    ['whitespace', '\u2581\u2581'], ['whitespace', 'a \u2581 b'], ['whitespace', 'end\u2581'], ['whitespace', 'a\r\nb'], ['whitespace', 'a\r\n\r\nb'],
    ['whitespace', 'trail \u00a0'], ['whitespace', ' \u3000lead'], ['whitespace', 'a\u0085b'], ['whitespace', 'a\u2028b\u2029c'],
    // digits and ties
    ['digits', '999999999'], ['digits', '99999999'], ['digits', '9999999999999999999999999'], ['digits', '1234567890'],
    ['digits', '0000000000'], ['digits', '3.14159265358979'], ['digits', '100,000,000'], ['digits', '١٢٣٤٥'], ['digits', '१२३'], ['digits', '２０２４年'],
    // Hangul jamo
    ['jamo', '\u1100\u1161\u11a8'], ['jamo', '\u1100\u1161'], ['jamo', '\u1112\u1161\u11ab\u1100\u1173\u11af'], ['jamo', '각 \u1100\u1161\u11a8'],
    ['jamo', '\u3131\u314f'], ['jamo', '\u1100'], ['jamo', '\u11a8'], ['jamo', 'a\u1161'],
    // graphemes: whole-cluster lookup in the charsmap (< 6 UTF-8 bytes)
    ['grapheme', 'ﬁ\u0301'], ['grapheme', '①\u0301'], ['grapheme', 'e\u0301'], ['grapheme', 'e\u0301\u0301'], ['grapheme', 'A\u030a'],
    ['grapheme', 'café'], ['grapheme', 'cafe\u0301'], ['grapheme', 'ｶ\uff9e'], ['grapheme', '\u0301a'], ['grapheme', ' \u0301'],
    ['grapheme', 'a\u20dd'], ['grapheme', '1\ufe0f'], ['grapheme', '1\ufe0f\u20e3'], ['grapheme', 'ﬃ\u0308'], ['grapheme', '²\u0301'],
    ['grapheme', 'K\u0301'], ['grapheme', 'Ω\u0308'], ['grapheme', 'ǆ\u030c'], ['grapheme', 'x\u200d'], ['grapheme', 'Å\u0323'],
    ['grapheme', 'ﾊﾟﾟ'], ['grapheme', 'ｶ\u3099'], ['grapheme', '\u3000\u0301'], ['grapheme', '\u00a0\u0301'], ['grapheme', 'ℌ\u0327x'],
    // NFKC forms and charsmap specifics
    ...NFKC.map((s): [string, string] => ['nfkc', s]),
    ['nfkc', 'the ﬁnal ﬂight ①②③ ㍻ x² H₂O ½ ™ ｔｅｓｔ'],
    // control characters
    ['control', 'a\u0000b'], ['control', '\u0000'], ['control', 'a\u0001b'], ['control', 'a\u0007\u0008b'], ['control', 'a\u007fb'],
    ['control', 'a\u0080b'], ['control', 'a\u009fb'], ['control', 'a\u00adb'], ['control', 'a\u200eb'], ['control', 'a\u202eb'],
    ['control', 'a\u2060b'], ['control', 'a\ufffdb'], ['control', 'a\ufffcb'], ['control', 'a\ue000b'], ['control', 'a\u{e0001}b'],
    ['control', '\u001b[31mred\u001b[0m'], ['control', 'a\u000bb\u000cc'], ['control', 'a\u001cb\u001dc\u001ed'],
    // lone surrogates (the Rust binding receives U+FFFD)
    ['surrogate', '\ud800'], ['surrogate', 'a\ud800b'], ['surrogate', 'a\udc00b'], ['surrogate', '\ude00\ud83d'], ['surrogate', '😀\ud83d'],
    ['surrogate', '\ud83d<mask>'], ['surrogate', 'x \udfff y'], ['surrogate', '\ud800\ud800'],
    // emoji
    ...EMOJI.map((s): [string, string] => ['emoji', s]),
    ['emoji', 'Family: 👨‍👩‍👧‍👦, flags: 🇩🇪🇯🇵, thumbs: 👍🏽 ❤️'],
    // long words
    ['long', 'a'.repeat(1000)], ['long', 'ab'.repeat(300)], ['long', 'Donaudampfschifffahrtsgesellschaftskapitänswitwe'],
    ['long', 'pneumonoultramicroscopicsilicovolcanoconiosis'], ['long', '𓀀'.repeat(50)], ['long', '数'.repeat(200)],
    ['long', 'x'.repeat(20) + ' ' + 'y'.repeat(20)], ['long', '9'.repeat(777)],
  ];
  return list.map(([category, text], i) => ({ id: `hand_${String(i).padStart(3, '0')}`, category, text }));
}

function randomProbe(i: number): Probe {
  const scripts = Object.keys(WORDS);
  const kind = pick(['words', 'words', 'words', 'chars', 'mixed', 'mixed', 'nfkc', 'emoji', 'marks', 'specials', 'controls', 'digits', 'jamo']);
  const parts: string[] = [];
  const n = int(1, 10);
  for (let k = 0; k < n; k++) {
    const script = pick(scripts);
    switch (kind) {
      case 'words':
        parts.push(pick(WORDS[script]!));
        break;
      case 'chars':
        parts.push(randChars(CHARS[pick(Object.keys(CHARS))]!, 1, 6));
        break;
      case 'mixed':
        parts.push(rand() < 0.5 ? pick(WORDS[script]!) : rand() < 0.5 ? pick(EMOJI) : randChars(CHARS[pick(Object.keys(CHARS))]!, 1, 4));
        break;
      case 'nfkc':
        parts.push(rand() < 0.6 ? pick(NFKC) : pick(WORDS[script]!));
        break;
      case 'emoji':
        parts.push(rand() < 0.6 ? pick(EMOJI) + (rand() < 0.3 ? pick(EMOJI) : '') : pick(WORDS[script]!));
        break;
      case 'marks': {
        const base = rand() < 0.5 ? pick(WORDS[script]!) : randChars(CHARS[pick(Object.keys(CHARS))]!, 1, 3);
        parts.push(base + randChars(COMBINING, 1, 3));
        break;
      }
      case 'specials':
        parts.push(rand() < 0.5 ? pick(SPECIALS) : pick(WORDS[script]!));
        break;
      case 'controls':
        parts.push(rand() < 0.4 ? randChars(CONTROL, 1, 2) + pick(WORDS[script]!) : pick(WORDS[script]!));
        break;
      case 'digits':
        parts.push(rand() < 0.6 ? randChars(range(0x30, 0x39), 1, 15) : pick(WORDS[script]!));
        break;
      case 'jamo':
        parts.push(rand() < 0.6 ? randChars(CHARS.jamo!, 1, 5) : pick(WORDS.hangul!));
        break;
    }
  }
  // separators: mostly single spaces, sometimes other whitespace or nothing
  let text = rand() < 0.15 ? pick(WHITESPACE) : '';
  parts.forEach((p, k) => {
    if (k > 0) text += rand() < 0.6 ? ' ' : rand() < 0.25 ? '' : pick(WHITESPACE);
    text += p;
  });
  if (rand() < 0.15) text += pick(WHITESPACE);
  return { id: `rand_${String(i).padStart(3, '0')}`, category: `random_${kind}`, text };
}

export function makeProbes(): Probe[] {
  rand = mulberry32(SEED);
  const probes = handWritten();
  for (let i = 0; i < 360; i++) probes.push(randomProbe(i));
  // a few long mixed paragraphs for the truncation lengths (> 512 tokens)
  for (let i = 0; i < 6; i++) {
    const words: string[] = [];
    const script = pick(Object.keys(WORDS));
    for (let k = 0; k < 700; k++) words.push(rand() < 0.8 ? pick(WORDS[script]!) : pick(WORDS[pick(Object.keys(WORDS))]!));
    probes.push({ id: `para_${i}`, category: 'paragraph', text: words.join(rand() < 0.5 ? ' ' : '') });
  }
  return probes;
}

// ---------------------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const check = process.argv.includes('--check');
  const { Tokenizer } = await import('tokenizers');
  const rust = Tokenizer.fromFile(TOKENIZER);
  const rustTrunc = Tokenizer.fromFile(TOKENIZER);
  const probes = makeProbes();
  const lines: string[] = [];
  for (const p of probes) {
    const ids = (await rust.encode(p.text)).getIds();
    const rec: Record<string, unknown> = { id: p.id, category: p.category, text: p.text, input_ids: ids };
    if (ids.length > 16) {
      const truncated: Record<string, number[]> = {};
      for (const n of TRUNCATION_LENGTHS) {
        if (ids.length <= n) continue;
        rustTrunc.setTruncation(n);
        truncated[String(n)] = (await rustTrunc.encode(p.text)).getIds();
      }
      rec.truncated = truncated;
    }
    lines.push(JSON.stringify(rec));
  }
  const content = lines.join('\n') + '\n';
  if (check) {
    const old = readFileSync(OUT, 'utf8');
    if (old !== content) {
      console.error(`${OUT} differs from a fresh generation`);
      process.exit(1);
    }
    console.log(`${OUT}: up to date (${probes.length} probes)`);
    return;
  }
  writeFileSync(OUT, content);
  console.log(`wrote ${probes.length} probes to ${OUT}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
