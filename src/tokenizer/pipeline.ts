/**
 * Corrected tokenizer-pipeline components, each written to match the Rust `tokenizers` crate (the library
 * behind HF fast tokenizers) where `@huggingface/tokenizers` 0.2.0 differs from it. Every function here is
 * a pure text → text / text → pieces step; `src/tokenizer.ts` wires them together.
 *
 * What is taken from `@huggingface/tokenizers` unchanged: the Unigram lattice/Viterbi (with one score fix,
 * see `unigram.ts`). `Replace` regexes run on a linear-time engine instead of JS RegExp (see `regex.ts`).
 */
import { PrecompiledCharsmap } from './precompiled.js';
import { TokenizerRegex } from './regex.js';

/** Rust `char::is_whitespace` = the Unicode `White_Space` property (JS `\s` differs: it has U+FEFF, lacks U+0085). */
const RUST_WS = /\p{White_Space}/u;
/** Rust `regex` `\w` (Unicode): Alphabetic, M, Nd, Pc, Join_Control. Used by `single_word` added tokens. */
const RUST_WORD_START = /^[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]/u;
const RUST_WORD_END = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]$/u;

export function isRustWhitespace(ch: string): boolean {
  return RUST_WS.test(ch);
}

/** Start index of the run of Rust-whitespace code points that ends at `end`. */
export function whitespaceRunBefore(text: string, end: number): number {
  let i = end;
  while (i > 0) {
    const lo = text.charCodeAt(i - 1);
    const step = lo >= 0xdc00 && lo <= 0xdfff && i >= 2 && isHighSurrogate(text.charCodeAt(i - 2)) ? 2 : 1;
    if (!RUST_WS.test(text.slice(i - step, i))) break;
    i -= step;
  }
  return i;
}

/** End index of the run of Rust-whitespace code points that starts at `start`. */
export function whitespaceRunAfter(text: string, start: number): number {
  let i = start;
  while (i < text.length) {
    const step = isHighSurrogate(text.charCodeAt(i)) && i + 1 < text.length ? 2 : 1;
    if (!RUST_WS.test(text.slice(i, i + step))) break;
    i += step;
  }
  return i;
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

/**
 * The Rust binding receives JS strings as UTF-8; Node/V8 encodes a lone surrogate as U+FFFD (the WHATWG
 * rule, same as `TextEncoder`). We apply the same replacement up front so ids match for any JS string.
 */
export function toWellFormed(text: string): string {
  return text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

// ---------------------------------------------------------------------------------------------------------
// Normalizers
// ---------------------------------------------------------------------------------------------------------

export type NormalizeFn = (text: string) => string;

interface JsonObject {
  [key: string]: unknown;
}

function isObject(x: unknown): x is JsonObject {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * Builds a normalizer from a tokenizer.json `normalizer` entry. Supported: Sequence, Precompiled (real
 * charsmap), Replace, Strip, NFC/NFD/NFKC/NFKD, Lowercase, Prepend. Anything else is rejected rather than
 * approximated.
 */
export function buildNormalizer(spec: unknown, where = 'normalizer'): NormalizeFn | null {
  if (spec === null || spec === undefined) return null;
  if (!isObject(spec) || typeof spec.type !== 'string') throw new Error(`${where}: expected an object with a "type"`);
  switch (spec.type) {
    case 'Sequence': {
      const list = spec.normalizers;
      if (!Array.isArray(list)) throw new Error(`${where}: Sequence without "normalizers" array`);
      const fns = list
        .map((s, i) => buildNormalizer(s, `${where}.normalizers[${i}]`))
        .filter((f): f is NormalizeFn => f !== null);
      return (text) => fns.reduce((t, f) => f(t), text);
    }
    case 'Precompiled': {
      const b64 = spec.precompiled_charsmap;
      if (b64 === null || b64 === undefined || b64 === '') return null;
      if (typeof b64 !== 'string') throw new Error(`${where}: precompiled_charsmap must be a base64 string`);
      const charsmap = PrecompiledCharsmap.fromBase64(b64);
      return (text) => charsmap.normalize(text);
    }
    case 'Replace':
      return buildReplace(spec, where);
    case 'Strip': {
      const left = spec.strip_left !== false;
      const right = spec.strip_right !== false;
      return (text) => {
        let t = text;
        if (left) t = t.slice(whitespaceRunAfter(t, 0));
        if (right) t = t.slice(0, whitespaceRunBefore(t, t.length));
        return t;
      };
    }
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD': {
      const form = spec.type;
      return (text) => text.normalize(form);
    }
    case 'Lowercase':
      // Rust lowercases char by char (no Greek final-sigma context, unlike String#toLowerCase on a word).
      return (text) => {
        let out = '';
        for (const ch of text) out += ch.toLowerCase();
        return out;
      };
    case 'Prepend': {
      const prefix = typeof spec.prepend === 'string' ? spec.prepend : '';
      return (text) => (text.length > 0 ? prefix + text : text);
    }
    default:
      throw new Error(`${where}: unsupported normalizer type "${spec.type}"`);
  }
}

function buildReplace(spec: JsonObject, where: string): NormalizeFn {
  const content = spec.content;
  if (typeof content !== 'string') throw new Error(`${where}: Replace without string "content"`);
  // Rust inserts `content` literally (no "$&" / "$1" expansion, unlike String#replace patterns).
  const pattern = spec.pattern;
  if (isObject(pattern) && typeof pattern.Regex === 'string') {
    const re = TokenizerRegex.compile(pattern.Regex, `${where}.pattern`);
    return (text) => re.replaceAll(text, content);
  }
  if (isObject(pattern) && typeof pattern.String === 'string') {
    const literal = pattern.String;
    // An empty String pattern matches at every character boundary, both ends included, as in Rust.
    if (literal === '') return (text) => text.replace(/(?:)/gu, () => content);
    return (text) => text.split(literal).join(content);
  }
  throw new Error(`${where}: Replace pattern must be {"String": ...} or {"Regex": ...}`);
}

// ---------------------------------------------------------------------------------------------------------
// Pre-tokenizers
// ---------------------------------------------------------------------------------------------------------

/**
 * Splits one normalized section into words (pieces handed to the model). `atInputStart` tells whether the
 * section begins at offset 0 of the original input (only Metaspace's "first" prepend scheme looks at it).
 */
export type PreTokenizeFn = (text: string, atInputStart: boolean) => string[];

export function buildPreTokenizer(spec: unknown, where = 'pre_tokenizer'): PreTokenizeFn | null {
  if (spec === null || spec === undefined) return null;
  if (!isObject(spec) || typeof spec.type !== 'string') throw new Error(`${where}: expected an object with a "type"`);
  switch (spec.type) {
    case 'Sequence': {
      const list = spec.pretokenizers;
      if (!Array.isArray(list)) throw new Error(`${where}: Sequence without "pretokenizers" array`);
      const fns = list
        .map((s, i) => buildPreTokenizer(s, `${where}.pretokenizers[${i}]`))
        .filter((f): f is PreTokenizeFn => f !== null);
      return (text, atInputStart) =>
        fns.reduce<string[]>((pieces, f) => pieces.flatMap((p, i) => f(p, atInputStart && i === 0)), [text]);
    }
    case 'Metaspace':
      return metaspace(spec, where);
    case 'WhitespaceSplit':
      return (text) => text.split(/\p{White_Space}+/u).filter((p) => p.length > 0);
    default:
      throw new Error(`${where}: unsupported pre-tokenizer type "${spec.type}"`);
  }
}

/**
 * Rust `Metaspace::pre_tokenize`: replace every ASCII space with the replacement char, prepend one unless
 * the piece already starts with it (scheme "always"; "first" only for the piece at the very start of the
 * input), then — when `split` (default true) — split *before* every replacement char (MergedWithNext).
 *
 * `@huggingface/tokenizers` never splits, so its Unigram runs over the whole section: unknown characters
 * are fused across words and the lattice may choose pieces spanning a "▁" boundary.
 * Legacy files carry `add_prefix_space` instead of `prepend_scheme`.
 */
function metaspace(spec: JsonObject, where: string): PreTokenizeFn {
  const replacement = typeof spec.replacement === 'string' ? spec.replacement : '\u2581';
  if ([...replacement].length !== 1) throw new Error(`${where}: Metaspace replacement must be one character`);
  let scheme: string;
  if (typeof spec.prepend_scheme === 'string') scheme = spec.prepend_scheme;
  else scheme = spec.add_prefix_space === false ? 'never' : 'always';
  if (scheme !== 'always' && scheme !== 'first' && scheme !== 'never') {
    throw new Error(`${where}: unknown Metaspace prepend_scheme "${scheme}"`);
  }
  const split = spec.split !== false;
  return (text, atInputStart) => {
    let t = text.split(' ').join(replacement);
    const prepend = scheme === 'always' || (scheme === 'first' && atInputStart);
    if (prepend && t.length > 0 && !t.startsWith(replacement)) t = replacement + t;
    if (!split) return t.length > 0 ? [t] : [];
    const out: string[] = [];
    let start = 0;
    let idx = t.indexOf(replacement, 1);
    while (idx !== -1) {
      if (idx > start) out.push(t.slice(start, idx));
      start = idx;
      idx = t.indexOf(replacement, idx + replacement.length);
    }
    if (start < t.length) out.push(t.slice(start));
    return out;
  };
}

// ---------------------------------------------------------------------------------------------------------
// Added tokens
// ---------------------------------------------------------------------------------------------------------

export interface AddedTokenSpec {
  id: number;
  content: string;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export function parseAddedTokens(list: unknown, file: string): AddedTokenSpec[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new Error(`${file}: "added_tokens" must be an array`);
  return list.map((t, i) => {
    if (!isObject(t) || typeof t.content !== 'string' || !Number.isInteger(t.id)) {
      throw new Error(`${file}: added_tokens[${i}] needs integer "id" and string "content"`);
    }
    const special = t.special === true;
    return {
      id: t.id as number,
      content: t.content,
      singleWord: t.single_word === true,
      lstrip: t.lstrip === true,
      rstrip: t.rstrip === true,
      normalized: typeof t.normalized === 'boolean' ? t.normalized : !special,
      special,
    };
  });
}

/** A piece of input: either plain text still to be tokenized, or an already-matched added token. */
export type Section = { text: string; tokenId?: undefined } | { text: string; tokenId: number };

/**
 * Rust `AddedVocabulary::find_matches`: leftmost-longest matching of the added tokens; `lstrip`/`rstrip`
 * swallow adjacent whitespace (Rust `char::is_whitespace`, never past the previous match); `single_word`
 * skips matches touching a word character.
 *
 * `@huggingface/tokenizers` does the same with `String#trimEnd/trimStart`, whose whitespace set is the
 * JS one: U+FEFF counts as whitespace (it is not in Rust) and U+0085 does not (it is in Rust).
 */
export class AddedTokenMatcher {
  private readonly byFirst = new Map<string, AddedTokenSpec[]>();

  constructor(tokens: AddedTokenSpec[]) {
    for (const t of tokens) {
      if (t.content.length === 0) continue;
      const first = t.content[0]!;
      const list = this.byFirst.get(first) ?? [];
      list.push(t);
      this.byFirst.set(first, list);
    }
    // longest first so that the first hit at a position is the longest one
    for (const list of this.byFirst.values()) list.sort((a, b) => b.content.length - a.content.length);
  }

  get isEmpty(): boolean {
    return this.byFirst.size === 0;
  }

  split(text: string): Section[] {
    if (this.isEmpty || text.length === 0) return text.length === 0 ? [] : [{ text }];
    const out: Section[] = [];
    let startOffset = 0;
    let i = 0;
    while (i < text.length) {
      const candidates = this.byFirst.get(text[i]!);
      let match: AddedTokenSpec | undefined;
      if (candidates) {
        for (const c of candidates) {
          if (text.startsWith(c.content, i)) {
            match = c;
            break;
          }
        }
      }
      if (match === undefined) {
        i++;
        continue;
      }
      // aho-corasick keeps scanning after the raw match end, whatever lstrip/rstrip/single_word do
      const matchEnd = i + match.content.length;
      i = matchEnd;
      let start = matchEnd - match.content.length;
      let stop = matchEnd;
      if (match.singleWord) {
        const startSpace = start === 0 || !RUST_WORD_END.test(text.slice(Math.max(0, start - 2), start));
        const stopSpace = stop === text.length || !RUST_WORD_START.test(text.slice(stop, stop + 2));
        if (!startSpace || !stopSpace) continue;
      }
      if (match.lstrip) start = Math.max(whitespaceRunBefore(text, start), startOffset);
      if (match.rstrip) stop = whitespaceRunAfter(text, stop);
      if (start > startOffset) out.push({ text: text.slice(startOffset, start) });
      out.push({ text: text.slice(start, stop), tokenId: match.id });
      startOffset = stop;
    }
    if (startOffset < text.length) out.push({ text: text.slice(startOffset) });
    return out;
  }
}
