/**
 * Regex patterns from tokenizer.json (`Replace` with `{"Regex": ...}`), run by a linear-time engine.
 *
 * The patterns come from a file the user may have downloaded, and JS's backtracking RegExp takes
 * exponential time on some of them (`(a+)+$` on 30 characters takes seconds, doubling per character).
 * So they run on RE2 (the `re2js` port), whose matching time is linear in the text. The patterns are
 * written for Oniguruma (the engine behind the Rust `tokenizers` crate), so each is translated here:
 * Oniguruma's Unicode `\d \s \w \h` become explicit classes (RE2's are ASCII-only), `^ $` are line
 * anchors in Oniguruma and become RE2's multi-line ones, `{,n}` becomes `{0,n}`, groups become
 * non-capturing. What RE2 cannot run in linear time (look-around, back-references, atomic groups,
 * possessive quantifiers) or means differently (Unicode `\b`, `\Z`, nested classes, POSIX brackets,
 * extended mode) is refused at load with an error naming the construct, never approximated.
 */
import { RE2JS } from 're2js';

/** Oniguruma's Unicode word characters, as `@huggingface/tokenizers` defines them for `\w`. */
const WORD = '\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}';
const HEX = '0-9A-Fa-f';

/** Class-free escapes: what each stands for outside brackets. */
const ESCAPES: Record<string, string> = {
  d: '\\p{Nd}', D: '\\P{Nd}',
  s: '\\p{White_Space}', S: '\\P{White_Space}',
  w: `[${WORD}]`, W: `[^${WORD}]`,
  h: `[${HEX}]`, H: `[^${HEX}]`,
  t: '\\t', n: '\\n', r: '\\r', f: '\\f', v: '\\v', a: '\\x07', e: '\\x1B',
  A: '\\A', z: '\\z',
};
/** Inside brackets only the non-negated classes can be spliced in (RE2 has no nested classes). */
const CLASS_ESCAPES: Record<string, string> = {
  d: '\\p{Nd}', D: '\\P{Nd}', s: '\\p{White_Space}', S: '\\P{White_Space}', w: WORD, h: HEX,
  t: '\\t', n: '\\n', r: '\\r', f: '\\f', v: '\\v', a: '\\x07', e: '\\x1B', b: '\\x08',
};
const REFUSED_ESCAPES: Record<string, string> = {
  b: 'the word boundary \\b (Oniguruma\'s is Unicode-aware, RE2\'s is ASCII-only)',
  B: 'the non-boundary \\B (Oniguruma\'s is Unicode-aware, RE2\'s is ASCII-only)',
  Z: '\\Z (end of text before a final newline)',
  G: '\\G (match-start anchor)',
  k: 'a named back-reference \\k<...>',
  g: 'a subexpression call \\g<...>',
  K: '\\K (keep)',
  W: 'the negated class \\W inside brackets',
  H: 'the negated class \\H inside brackets',
};
/** A class no character is in: stands for `^` where it must not match. */
const NEVER = '[^\\x00-\\x{10FFFF}]';

/** RE2's largest repeat count. */
const MAX_REPEAT = 1000;

export class TokenizerRegexError extends Error {}

/** A compiled tokenizer.json Regex pattern. */
export class TokenizerRegex {
  private constructor(
    readonly source: string,
    readonly re2Source: string,
    private readonly re: RE2JS,
    /** The pattern with `^` unable to match, when it has one (see `replaceAll`). */
    private readonly noLineStart: RE2JS | null,
  ) {}

  /**
   * Compiles an Oniguruma pattern; throws TokenizerRegexError naming `where`, the pattern and the
   * construct it cannot run.
   */
  static compile(source: string, where: string): TokenizerRegex {
    let re2Source: string;
    try {
      re2Source = translate(source);
      const withoutCaret = translate(source, NEVER);
      const noLineStart = withoutCaret === re2Source ? null : RE2JS.compile(withoutCaret, RE2JS.MULTILINE);
      return new TokenizerRegex(source, re2Source, RE2JS.compile(re2Source, RE2JS.MULTILINE), noLineStart);
    } catch (e) {
      const why = e instanceof TokenizerRegexError ? e.message : `RE2 refuses it: ${(e as Error).message}`;
      throw new TokenizerRegexError(`${where}: Regex pattern ${JSON.stringify(source)} cannot be run by the linear-time engine: ${why}`);
    }
  }

  /**
   * Replaces every match with `content`, inserted literally. Matches are found as the Rust `onig`
   * crate's `find_iter` finds them: leftmost-first, non-overlapping, and an empty match right where
   * the previous match ended is skipped (RE2, like JS, would report it).
   *
   * One anchor differs: Oniguruma's `^` does not match at the very end of a text that ends with `\n`,
   * RE2's multi-line `^` does. So an empty match there is kept only if the pattern also matches there
   * with `^` disabled. (A non-empty match that crosses the final `\n` and then asserts `^`, as in
   * `\n^`, is not re-checked; no tokenizer pattern does that.)
   */
  replaceAll(text: string, content: string): string {
    const m = this.re.matcher(text);
    let out = '';
    let last = 0;
    let prevEnd = -1;
    while (m.find()) {
      const [start, end] = [m.start(), m.end()];
      if (start === end && start === prevEnd) continue;
      if (start === end && start === text.length && this.noLineStart && text.endsWith('\n')) {
        const alt = this.noLineStart.matcher(text);
        if (!(alt.find(start) && alt.start() === start && alt.end() === start)) continue;
      }
      out += text.slice(last, start) + content;
      last = end;
      prevEnd = end;
    }
    return out + text.slice(last);
  }
}

/**
 * Oniguruma (Ruby syntax) → RE2 syntax, or a TokenizerRegexError naming what cannot be translated.
 * `caret` is what `^` becomes (RE2's multi-line `^` by default).
 */
export function translate(src: string, caret = '^'): string {
  const cps = [...src];
  let out = '';
  let i = 0;
  /** True right after an atom that a quantifier may follow; false after a quantifier, at a group start, after `|`. */
  let quantifiable = false;
  const refuse = (what: string): never => { throw new TokenizerRegexError(`${what} at index ${i}`); };

  while (i < cps.length) {
    const c = cps[i]!;
    if (c === '\\') {
      const [text, next] = escape(cps, i, false, refuse);
      out += text;
      i = next;
      quantifiable = true;
    } else if (c === '[') {
      const [text, next] = charClass(cps, i, refuse);
      out += text;
      i = next;
      quantifiable = true;
    } else if (c === '(') {
      const [text, next] = groupOpen(cps, i, refuse);
      out += text;
      i = next;
      quantifiable = false;
    } else if (c === '*' || c === '+' || c === '?' || (c === '{' && interval(cps, i) !== null)) {
      if (!quantifiable) refuse(`a repetition operator '${c}' with nothing to repeat (or repeating a repetition)`);
      let text = c;
      let next = i + 1;
      if (c === '{') {
        const iv = interval(cps, i)!;
        if (iv.max !== null && iv.max < iv.min) refuse(`the interval {${iv.min},${iv.max}} (max below min)`);
        if (iv.min > MAX_REPEAT || (iv.max ?? 0) > MAX_REPEAT) refuse(`a repeat count above ${MAX_REPEAT}`);
        text = iv.max === iv.min && iv.exact ? `{${iv.min}}` : `{${iv.min},${iv.max ?? ''}}`;
        next = iv.end;
      }
      if (cps[next] === '?') { text += '?'; next++; } // lazy
      else if (cps[next] === '+' && c !== '{') refuse(`the possessive quantifier '${c}+'`);
      out += text;
      i = next;
      quantifiable = false;
    } else {
      // `^ $ . | )` and literals pass through: with RE2's multi-line flag `^ $` are line anchors as in
      // Oniguruma, and `.` excludes only `\n` in both.
      out += c === '{' || c === '}' || c === ']' ? `\\${c}` : c === '^' ? caret : c;
      i++;
      quantifiable = c !== '|' && c !== '^';
    }
  }
  return out;
}

/** `{n}`, `{n,}`, `{n,m}` or `{,m}` at `i`, or null when the brace is a literal (as Oniguruma reads it). */
function interval(cps: string[], i: number): { min: number; max: number | null; exact: boolean; end: number } | null {
  let j = i + 1;
  const num = (): string => { let s = ''; while (j < cps.length && /[0-9]/.test(cps[j]!)) s += cps[j++]; return s; };
  const lo = num();
  if (cps[j] === '}') return lo === '' ? null : { min: Number(lo), max: Number(lo), exact: true, end: j + 1 };
  if (cps[j] !== ',') return null;
  j++;
  const hi = num();
  if (cps[j] !== '}' || (lo === '' && hi === '')) return null;
  return { min: lo === '' ? 0 : Number(lo), max: hi === '' ? null : Number(hi), exact: false, end: j + 1 };
}

/** A group opener at `i`: plain, named and `(?:` groups become non-capturing; flag groups keep `i` and map Ruby's `m` to RE2's `s`. */
function groupOpen(cps: string[], i: number, refuse: (what: string) => never): [string, number] {
  if (cps[i + 1] !== '?') return ['(?:', i + 1];
  const rest = cps.slice(i + 2, i + 4).join('');
  if (rest.startsWith(':')) return ['(?:', i + 3];
  if (rest.startsWith('=') || rest.startsWith('!') || rest === '<=' || rest === '<!') refuse(`the look-around group '(?${rest.startsWith('<') ? rest : rest[0]}'`);
  if (rest.startsWith('>')) refuse("the atomic group '(?>'");
  if (rest.startsWith('~')) refuse("the absent operator '(?~'");
  if (rest.startsWith('#')) refuse("the comment group '(?#'");
  if (rest.startsWith('<') || rest.startsWith("'")) {
    const close = rest.startsWith('<') ? '>' : "'";
    const end = cps.indexOf(close, i + 3);
    if (end < 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(cps.slice(i + 3, end).join(''))) refuse('a malformed named group');
    return ['(?:', end + 1];
  }
  // Option groups: (?imx-imx) or (?imx-imx:...).
  let j = i + 2;
  let flags = '';
  let negative = false;
  while (j < cps.length && cps[j] !== ')' && cps[j] !== ':') {
    const f = cps[j]!;
    if (f === '-' && !negative) { negative = true; flags += '-'; }
    else if (f === 'i') flags += 'i';
    else if (f === 'm') flags += 's'; // Ruby's (?m) is "dot matches newline"
    else if (f === 'x') refuse("the extended-mode option '(?x'");
    else refuse(`the group option '${f}'`);
    j++;
  }
  if (j >= cps.length) refuse('an unterminated group option');
  if (flags === '' || flags === '-') refuse('an empty group option');
  return cps[j] === ')' ? [`(?${flags})`, j + 1] : [`(?${flags}:`, j + 1];
}

/** A bracket class at `i`, copied with its escapes translated; nested classes, `&&` and POSIX brackets are refused. */
function charClass(cps: string[], i: number, refuse: (what: string) => never): [string, number] {
  let out = '[';
  let j = i + 1;
  if (cps[j] === '^') { out += '^'; j++; }
  if (cps[j] === ']') { out += '\\]'; j++; } // a leading ']' is a literal in both engines
  while (j < cps.length && cps[j] !== ']') {
    const c = cps[j]!;
    if (c === '\\') {
      const [text, next] = escape(cps, j, true, refuse);
      out += text;
      j = next;
    } else if (c === '[') {
      refuse(cps[j + 1] === ':' ? 'a POSIX bracket class [:...:] (ASCII-only in RE2, Unicode in Oniguruma)' : 'a nested character class');
    } else if (c === '&' && cps[j + 1] === '&') {
      refuse("a class intersection '&&'");
    } else {
      out += c;
      j++;
    }
  }
  if (j >= cps.length) refuse('an unterminated character class');
  return [`${out}]`, j + 1];
}

/** One escape sequence at `i` (inside a class when `inClass`), translated; returns [text, next index]. */
function escape(cps: string[], i: number, inClass: boolean, refuse: (what: string) => never): [string, number] {
  const c = cps[i + 1];
  if (c === undefined) refuse('a trailing backslash');
  const e = c!;
  const table = inClass ? CLASS_ESCAPES : ESCAPES;
  const mapped = table[e];
  if (mapped !== undefined) return [mapped, i + 2];
  if (e === 'x' || e === 'u') {
    let hex = '';
    let j = i + 2;
    if (e === 'x' && cps[j] === '{') {
      j++;
      while (j < cps.length && cps[j] !== '}') hex += cps[j++];
      j++;
    } else {
      const n = e === 'x' ? 2 : 4;
      for (let k = 0; k < n && j < cps.length && /[0-9A-Fa-f]/.test(cps[j]!); k++) hex += cps[j++];
      if (hex.length !== n) refuse(`a malformed '\\${e}' escape`);
    }
    if (!/^[0-9A-Fa-f]{1,6}$/.test(hex) || Number.parseInt(hex, 16) > 0x10ffff) refuse(`a malformed '\\${e}' escape`);
    return [`\\x{${hex}}`, j];
  }
  if (e === 'p' || e === 'P') {
    if (cps[i + 2] !== '{') refuse(`'\\${e}' without braces`);
    const end = cps.indexOf('}', i + 3);
    if (end < 0) refuse(`an unterminated '\\${e}{'`);
    let name = cps.slice(i + 3, end).join('');
    let negated = e === 'P';
    if (name.startsWith('^')) { negated = !negated; name = name.slice(1); } // Oniguruma's \p{^Name}
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) refuse(`the property '\\${e}{${name}}'`);
    return [`\\${negated ? 'P' : 'p'}{${name}}`, end + 1];
  }
  if (/[0-9]/.test(e)) refuse(`the back-reference or octal escape '\\${e}'`);
  const why = REFUSED_ESCAPES[e];
  if (why !== undefined) refuse(why);
  if (/[A-Za-z]/.test(e)) refuse(`the escape '\\${e}'`);
  // An escaped symbol is that symbol, literally.
  return [/[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]/.test(e) ? `\\${e}` : `\\x{${e.codePointAt(0)!.toString(16)}}`, i + 2];
}
