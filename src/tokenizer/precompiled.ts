/**
 * SentencePiece "precompiled charsmap" normalizer, written to behave exactly like the Rust
 * `tokenizers` `Precompiled` normalizer (crate `spm_precompiled`).
 *
 * Why this exists: `@huggingface/tokenizers` (0.2.0) ignores `precompiled_charsmap` altogether and
 * approximates it with a hand-written list of control/space characters followed by `String#normalize('NFKC')`
 * (`src/core/normalizer/Precompiled.ts`). The real charsmap of `nmt_nfkc` differs from plain NFKC on
 * thousands of code points, and the Rust implementation additionally works grapheme by grapheme.
 *
 * Charsmap layout (base64-decoded):
 *   u32 LE  trie_size (bytes)
 *   trie_size bytes: a darts-clone double array of u32 LE units, keyed by UTF-8 bytes
 *   rest: the normalized-strings blob, NUL-terminated UTF-8 strings; a trie value is a byte offset into it
 *
 * Rust algorithm (`Precompiled::normalize`): split the text into extended grapheme clusters; for a cluster
 * shorter than 6 UTF-8 bytes, look the *whole cluster* up: if the trie has any entry that is a prefix of
 * the cluster, the cluster is replaced by the replacement of the *shortest* such entry (`results[0]`),
 * even when that entry covers only part of the cluster (so `"ﬁ" + U+0301` becomes `"fi"`, the accent is
 * dropped). Otherwise (cluster ≥ 6 bytes, or no entry) every code point of the cluster is looked up on its
 * own the same way and replaced, or kept unchanged. The lookup stops at a NUL byte, so U+0000 is never
 * mapped.
 */

const HAS_LEAF_BIT = 1 << 8;

export class PrecompiledCharsmap {
  private readonly units: Uint32Array;
  private readonly blob: Uint8Array;
  private readonly decoder = new TextDecoder('utf-8');
  private readonly encoder = new TextEncoder();
  /** Cache of single-code-point and short-cluster lookups (undefined result stored as null). */
  private readonly cache = new Map<string, string | null>();
  private readonly segmenter: Intl.Segmenter;

  constructor(bytes: Uint8Array) {
    if (bytes.length < 4) throw new Error('precompiled_charsmap is too short (no trie size header)');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const trieSize = view.getUint32(0, true);
    if (trieSize % 4 !== 0 || 4 + trieSize > bytes.length) {
      throw new Error(`precompiled_charsmap is malformed: trie size ${trieSize} does not fit ${bytes.length} bytes`);
    }
    const units = new Uint32Array(trieSize / 4);
    for (let i = 0; i < units.length; i++) units[i] = view.getUint32(4 + 4 * i, true);
    this.units = units;
    this.blob = bytes.subarray(4 + trieSize);
    this.segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  }

  static fromBase64(b64: string): PrecompiledCharsmap {
    return new PrecompiledCharsmap(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  }

  /** darts-clone common-prefix search: the values of every key that is a prefix of `key`, shortest first. */
  commonPrefixSearch(key: Uint8Array): number[] {
    const units = this.units;
    const results: number[] = [];
    if (units.length === 0) return results;
    let nodePos = 0;
    let unit = units[0]!;
    nodePos ^= offsetOf(unit);
    for (const c of key) {
      if (c === 0) break;
      nodePos ^= c;
      if (nodePos >= units.length) return results;
      unit = units[nodePos]!;
      if (labelOf(unit) !== c) return results;
      nodePos ^= offsetOf(unit);
      if ((unit & HAS_LEAF_BIT) !== 0) {
        if (nodePos >= units.length) return results;
        results.push(units[nodePos]! & 0x7fffffff);
      }
    }
    return results;
  }

  /** Replacement for `chunk` (Rust `Precompiled::transform`), or null when the trie has no prefix of it. */
  transform(chunk: string): string | null {
    const cached = this.cache.get(chunk);
    if (cached !== undefined) return cached;
    const results = this.commonPrefixSearch(this.encoder.encode(chunk));
    let out: string | null = null;
    const first = results[0];
    if (first !== undefined) {
      let end = first;
      while (end < this.blob.length && this.blob[end] !== 0) end++;
      out = this.decoder.decode(this.blob.subarray(first, end));
    }
    if (this.cache.size < 100_000) this.cache.set(chunk, out);
    return out;
  }

  normalize(text: string): string {
    if (text.length === 0) return text;
    let out = '';
    const segments = ASCII_ONLY.test(text) ? asciiGraphemes(text) : graphemes(this.segmenter, text);
    for (const segment of segments) {
      if (utf8Length(segment) < 6) {
        const whole = this.transform(segment);
        if (whole !== null) {
          out += whole;
          continue;
        }
      }
      for (const ch of segment) {
        const mapped = this.transform(ch);
        out += mapped ?? ch;
      }
    }
    return out;
  }
}

const ASCII_ONLY = /^[\x00-\x7f]*$/;

/** Grapheme clusters of ASCII-only text: every character, except that CR LF is one cluster (GB3). */
function* asciiGraphemes(text: string): Generator<string> {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) === 13 && text.charCodeAt(i + 1) === 10) {
      yield '\r\n';
      i++;
    } else yield text[i]!;
  }
}

/**
 * Extended grapheme clusters of `text` (Unicode UAX #29, as Rust `unicode-segmentation`'s
 * `graphemes(true)`), via `Intl.Segmenter` run on bounded windows.
 *
 * V8's segment iterator takes time quadratic in the string length (≈3 s for 32k chars in Node 20), so the
 * text is segmented window by window: every segment of a window except the last is final (a boundary
 * decision depends on the characters from the window start, itself a boundary, up to the character after
 * it — never on later ones — and a window never ends inside a surrogate pair), and the next window starts
 * where the last segment began. The look-behind of UAX #29 rules never
 * crosses a boundary (regional-indicator pairs restart with even parity at a boundary), so restarting at one
 * gives the same clusters as segmenting the whole text.
 */
export function* graphemes(segmenter: Intl.Segmenter, text: string, window = 256): Generator<string> {
  let pos = 0;
  let size = window;
  while (pos < text.length) {
    let end = Math.min(text.length, pos + size);
    // never cut a surrogate pair: the character after a boundary must be seen whole
    const lastUnit = text.charCodeAt(end - 1);
    if (end < text.length && lastUnit >= 0xd800 && lastUnit <= 0xdbff) end++;
    const chunk = text.slice(pos, end);
    if (end === text.length) {
      for (const { segment } of segmenter.segment(chunk)) yield segment;
      return;
    }
    let last: { segment: string; index: number } | undefined;
    const done: string[] = [];
    for (const s of segmenter.segment(chunk)) {
      if (last !== undefined) done.push(last.segment);
      last = s;
    }
    if (done.length === 0 || last === undefined) {
      size *= 2; // a single cluster longer than the window (e.g. a long run of combining marks)
      continue;
    }
    for (const g of done) yield g;
    pos += last.index;
    size = window;
  }
}

function offsetOf(unit: number): number {
  // (unit >> 10) << ((unit & (1 << 9)) >> 6), computed without 32-bit overflow
  const shift = (unit & (1 << 9)) >>> 6;
  return (unit >>> 10) * 2 ** shift;
}

function labelOf(unit: number): number {
  // unit & ((1 << 31) | 0xff): a leaf unit has bit 31 set, so it never equals a byte label
  return (unit & 0x800000ff) >>> 0;
}

export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
