/**
 * Bounded truncation: the ids of a long text cut to `room` tokens, computed from a prefix of the text,
 * identical to tokenizing the whole text and keeping its first `room` ids.
 *
 * Why a prefix is enough. Cut the text at `c`, where `text[c]` is Rust whitespace and `c` is an extended
 * grapheme boundary; call the prefix P = text[0, c). With the pipeline this applies to (see
 * {@link prefixCutIsSafe}):
 *   - added tokens (raw and normalized contents without whitespace) never span `c`, so the sections of P
 *     are those of the text, except that the last plain section may carry whitespace the text gives to a
 *     later `lstrip` token, or stop where the text's section goes on;
 *   - the normalizers used are cluster-local (Precompiled works grapheme by grapheme; NF* and Lowercase
 *     never join across a whitespace starter) or only collapse a run of spaces (Replace " {2,}" → " "), so
 *     the normalized last section of P and that of the text agree up to and including the first space after
 *     the last non-space of P;
 *   - Metaspace splits before every space (as "▁"), and Unigram encodes each word on its own.
 * So every word of P except the last word of its last plain section is a word of the text, at the same
 * place: the ids before that last word ("trusted" ids) are a prefix of the text's ids. When there are at
 * least `room` of them, they are the answer; otherwise the prefix grows geometrically (to the whole text at
 * worst, e.g. a text without whitespace is one word and must be read whole).
 */

import type { ExplainedSection } from '../tokenizer.js';

/** Characters per kept token the first prefix allows for (grown ×2 while not enough). */
const FIRST_CHARS_PER_TOKEN = 8;
/** The first prefix is at least this long, whatever `room` is. */
const MIN_PREFIX_CHARS = 4096;

const WHITESPACE = /\p{White_Space}/gu;
const ANY_WHITESPACE = /\p{White_Space}/u;

interface JsonObject {
  [key: string]: unknown;
}
const isObject = (x: unknown): x is JsonObject => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * Whether tokenizer.json's normalizer, pre-tokenizer and added tokens are ones the prefix argument above
 * holds for; anything else (Strip, Prepend, other Replace patterns, other pre-tokenizers, added tokens with
 * whitespace) tokenizes the whole text before truncating.
 */
export function prefixCutIsSafe(normalizer: unknown, preTokenizer: unknown, addedContents: readonly string[]): boolean {
  if (addedContents.some((c) => ANY_WHITESPACE.test(c))) return false;
  return isObject(preTokenizer) && preTokenizer.type === 'Metaspace' && preTokenizer.split !== false && normalizerIsLocal(normalizer);
}

function normalizerIsLocal(spec: unknown): boolean {
  if (spec === null || spec === undefined) return true;
  if (!isObject(spec)) return false;
  switch (spec.type) {
    case 'Sequence':
      return Array.isArray(spec.normalizers) && spec.normalizers.every(normalizerIsLocal);
    case 'Precompiled':
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD':
    case 'Lowercase':
      return true;
    case 'Replace':
      return isObject(spec.pattern) && spec.pattern.Regex === ' {2,}' && spec.content === ' ';
    default:
      return false;
  }
}

/**
 * The first admissible cut at or after `from`: a whitespace code point that starts a grapheme cluster
 * (the one before it is no Prepend character nor CR before LF), or -1 when there is none.
 */
export function findCut(text: string, from: number, segmenter: Intl.Segmenter): number {
  WHITESPACE.lastIndex = Math.max(1, from);
  for (let m = WHITESPACE.exec(text); m !== null; m = WHITESPACE.exec(text)) {
    const c = m.index;
    const prevStart = c >= 2 && isLowSurrogate(text.charCodeAt(c - 1)) && isHighSurrogate(text.charCodeAt(c - 2)) ? c - 2 : c - 1;
    // the break before text[c] depends only on the code point before it (UAX #29 GB3, GB4, GB9b)
    let clusters = 0;
    for (const _ of segmenter.segment(text.slice(prevStart, c + m[0].length))) clusters++;
    if (clusters === 2) return c;
  }
  return -1;
}

/**
 * The first `room` ids of `text`, from prefixes: `trustedIds(prefix)` must return the ids of the prefix
 * without its last word (see above); `allIds(text)` tokenizes the whole text (the fallback).
 */
export function boundedIds(
  text: string,
  room: number,
  segmenter: Intl.Segmenter,
  trustedIds: (prefix: string) => number[],
  allIds: (text: string) => number[],
  minPrefix = MIN_PREFIX_CHARS,
): number[] {
  if (room <= 0) return [];
  let size = Math.max(minPrefix, room * FIRST_CHARS_PER_TOKEN);
  while (size < text.length) {
    const cut = findCut(text, size, segmenter);
    if (cut === -1) break;
    const ids = trustedIds(text.slice(0, cut));
    if (ids.length >= room) return ids.slice(0, room);
    size = cut * 2;
  }
  return allIds(text).slice(0, room);
}

/** The ids of explained sections, in order. */
export function sectionIds(sections: readonly ExplainedSection[]): number[] {
  return sections.flatMap((s) => (s.tokenId !== undefined ? [s.tokenId] : (s.words ?? []).flatMap((w) => w.ids)));
}

/** The sections of a prefix without the last word of a final plain section (the word the text may go on). */
export function withoutLastWord(sections: ExplainedSection[]): ExplainedSection[] {
  const last = sections[sections.length - 1];
  if (last?.words === undefined) return sections;
  return [...sections.slice(0, -1), { ...last, words: last.words.slice(0, -1) }];
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}
