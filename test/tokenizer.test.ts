/**
 * M3Tokenizer parity with the Rust HF `tokenizers` library (devDependency `tokenizers`, the reference):
 *   - every case of test/fixtures/cases.jsonl for tiny-m3, small-m3 and sharp-m3 (stored ids + live Rust)
 *   - test/fixtures/tokenizer-probes.jsonl (scripts/make-tokenizer-probes.ts): stored Rust ids + live Rust
 *   - truncation at 2, 3, 16, 64, 512; batch = map of single; id ↔ token; decode; argument errors
 *   - each corrected component against Rust on its own (charsmap normalizer exhaustively on single code
 *     points, grapheme windows, synthetic tokenizers for the Metaspace split / Replace / unk score / ties)
 *   - the disagreements of plain `@huggingface/tokenizers` with Rust, counted before/after, attributed to
 *     their root causes, and the minimal upstream repros
 */
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer as LibTokenizer } from '@huggingface/tokenizers';
import { M3Tokenizer } from '../src/tokenizer.js';
import { PrecompiledCharsmap, graphemes } from '../src/tokenizer/precompiled.js';
import { buildNormalizer, buildPreTokenizer, toWellFormed } from '../src/tokenizer/pipeline.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FIX = join(ROOT, 'test/fixtures');
const MODELS = ['tiny-m3', 'small-m3', 'sharp-m3'] as const;
const TRUNC = [2, 3, 16, 64, 512] as const;

interface Case {
  id: string;
  text: string;
  max_length: number;
  input_ids: number[];
}
interface Probe {
  id: string;
  category: string;
  text: string;
  input_ids: number[];
  truncated?: Record<string, number[]>;
}

const readJsonl = <T>(path: string): T[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);

const cases = readJsonl<Case>(join(FIX, 'cases.jsonl'));
const probes = readJsonl<Probe>(join(FIX, 'tokenizer-probes.jsonl'));
const readJson = (p: string): unknown => JSON.parse(readFileSync(p, 'utf8'));
const same = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
const esc = (s: string): string =>
  JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

// ------------------------------------------------------------------------------------------------------
// the Rust reference (napi binding); everything also has stored expectations, so only the live
// comparisons are skipped when the prebuilt binary cannot load on this platform
// ------------------------------------------------------------------------------------------------------

type RustModule = typeof import('tokenizers');
type RustTokenizer = InstanceType<RustModule['Tokenizer']>;
let rustMod: RustModule | undefined;
try {
  rustMod = await import('tokenizers');
} catch (e) {
  console.warn(`Rust tokenizers binding unavailable, live comparisons skipped: ${String(e)}`);
}
const live = rustMod !== undefined;

function rustFromFile(dir: string, maxLength?: number): RustTokenizer {
  const t = rustMod!.Tokenizer.fromFile(join(dir, 'tokenizer.json'));
  if (maxLength !== undefined) t.setTruncation(maxLength);
  return t;
}
const rustIds = async (t: RustTokenizer, text: string): Promise<number[]> => (await t.encode(text)).getIds();

function libFromDir(dir: string): LibTokenizer {
  return new LibTokenizer(readJson(join(dir, 'tokenizer.json')) as object, readJson(join(dir, 'tokenizer_config.json')) as object);
}

const TINY = join(FIX, 'tiny-m3');
let tok: M3Tokenizer;
beforeAll(async () => {
  tok = await M3Tokenizer.fromDir(TINY);
});

// ------------------------------------------------------------------------------------------------------

describe('loading and vocabulary', () => {
  it.each(MODELS)('%s: special ids and sizes come from the files', async (m) => {
    const t = await M3Tokenizer.fromDir(join(FIX, m));
    const json = readJson(join(FIX, m, 'tokenizer.json')) as { added_tokens: Array<{ id: number; content: string }> };
    const byContent = new Map(json.added_tokens.map((a) => [a.content, a.id]));
    expect([t.bosId, t.eosId, t.padId, t.unkId, t.maskId]).toEqual(
      ['<s>', '</s>', '<pad>', '<unk>', '<mask>'].map((c) => byContent.get(c)),
    );
    expect([t.bosId, t.padId, t.eosId, t.unkId, t.maskId]).toEqual([0, 1, 2, 3, 8001]);
    expect(t.vocabSize).toBe(8002);
    expect(t.modelMaxLength).toBe(8192);
    expect(t.numSpecialTokens).toBe(2);
    if (live) expect(t.vocabSize).toBe(rustFromFile(join(FIX, m)).getVocabSize(true));
  });

  it.runIf(live)('idToToken / tokenToId round-trip every id, equal to Rust idToToken / tokenToId', () => {
    const rust = rustFromFile(TINY);
    for (let id = 0; id < tok.vocabSize; id++) {
      const s = tok.idToToken(id);
      expect(s).toBe(rust.idToToken(id));
      expect(tok.tokenToId(s)).toBe(rust.tokenToId(s));
      expect(tok.tokenToId(s)).toBe(id);
    }
    expect(tok.tokenToId('definitely-not-a-piece')).toBeUndefined();
    expect(rust.tokenToId('definitely-not-a-piece')).toBeNull();
  });

  it.runIf(live)('decode equals Rust decode (ids → text) for every id and for mixed sequences', async () => {
    const rust = rustFromFile(TINY);
    for (let id = 0; id < tok.vocabSize; id++) {
      expect(tok.decode([id], { cleanUpTokenizationSpaces: false })).toBe(await rust.decode([id], false));
    }
    for (const c of cases) {
      const ids = c.input_ids;
      expect(tok.decode(ids, { cleanUpTokenizationSpaces: false })).toBe(await rust.decode(ids, false));
      expect(tok.decode(ids, { skipSpecialTokens: true, cleanUpTokenizationSpaces: false })).toBe(await rust.decode(ids, true));
    }
    // HF decode applies transformers' clean-up (tokenizer_config clean_up_tokenization_spaces = true)
    expect(tok.decodeId(tok.tokenToId('▁is')!)).toBe('is');
    expect(tok.decode(tok.tokenize('Hello , world .').inputIds, { skipSpecialTokens: true })).toBe('Hello, world.');
  });

  describe('errors', () => {
    let tmp: string;
    beforeAll(() => {
      tmp = mkdtempSync(join(tmpdir(), 'm3tok-'));
    });
    afterAll(() => rmSync(tmp, { recursive: true, force: true }));

    it('missing files and invalid JSON name the file', async () => {
      await expect(M3Tokenizer.fromDir(join(tmp, 'nope'))).rejects.toThrow(/tokenizer\.json: file not found/);
      const mk = (name: string): string => mkdtempSync(join(tmp, `${name}-`));
      const noConfig = mk('no-config');
      copyFileSync(join(TINY, 'tokenizer.json'), join(noConfig, 'tokenizer.json'));
      await expect(M3Tokenizer.fromDir(noConfig)).rejects.toThrow(/tokenizer_config\.json: file not found/);

      const badJson = mk('bad-json');
      writeFileSync(join(badJson, 'tokenizer.json'), '{"model": ');
      copyFileSync(join(TINY, 'tokenizer_config.json'), join(badJson, 'tokenizer_config.json'));
      await expect(M3Tokenizer.fromDir(badJson)).rejects.toThrow(/tokenizer\.json: invalid JSON/);

      const badConfig = mk('bad-config');
      copyFileSync(join(TINY, 'tokenizer.json'), join(badConfig, 'tokenizer.json'));
      writeFileSync(join(badConfig, 'tokenizer_config.json'), 'not json');
      await expect(M3Tokenizer.fromDir(badConfig)).rejects.toThrow(/tokenizer_config\.json: invalid JSON/);

      const noModel = mk('no-model');
      writeFileSync(join(noModel, 'tokenizer.json'), '{}');
      copyFileSync(join(TINY, 'tokenizer_config.json'), join(noModel, 'tokenizer_config.json'));
      await expect(M3Tokenizer.fromDir(noModel)).rejects.toThrow(/tokenizer\.json: missing "model"/);
    });

    it('bad arguments', () => {
      const bad = (x: unknown): string => x as string;
      expect(() => tok.tokenize(bad(42))).toThrow(new TypeError('text must be a string, got number'));
      expect(() => tok.tokenize(bad(null))).toThrow(/text must be a string, got null/);
      expect(() => tok.tokenizeBatch(['a', 'b', 'c', bad(3)])).toThrow(new TypeError('texts[3] must be a string, got number'));
      expect(() => tok.tokenizeBatch(['a', bad(undefined)])).toThrow(/texts\[1\] must be a string, got undefined/);
      expect(() => tok.tokenizeBatch(bad('abc') as unknown as string[])).toThrow(/texts must be an array of strings, got string/);
      for (const m of [1, 0, -5, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        expect(() => tok.tokenize('x', { maxLength: m })).toThrow(RangeError);
        expect(() => tok.tokenize('x', { maxLength: m })).toThrow(/maxLength must be an integer >= 2/);
        expect(() => tok.tokenizeBatch(['x'], { maxLength: m })).toThrow(/maxLength/);
      }
      expect(() => tok.tokenize('x', { maxLength: bad('8') as unknown as number })).toThrow(/maxLength must be an integer >= 2, got string/);
      expect(() => tok.idToToken(-1)).toThrow(RangeError);
      expect(() => tok.idToToken(tok.vocabSize)).toThrow(/outside the vocabulary/);
      expect(() => tok.idToToken(1.5)).toThrow(TypeError);
      expect(() => tok.decode([0, bad('x') as unknown as number])).toThrow(/ids\[1\] must be an integer/);
    });
  });
});

describe('cases.jsonl', () => {
  it.each(MODELS)('%s: tokenize(text, {maxLength}) equals the stored input_ids (and Rust)', async (m) => {
    const t = await M3Tokenizer.fromDir(join(FIX, m));
    const rustByLen = new Map<number, RustTokenizer>();
    for (const c of cases) {
      const got = t.tokenize(c.text, { maxLength: c.max_length });
      expect(got.inputIds, c.id).toEqual(c.input_ids);
      expect(got.attentionMask).toEqual(c.input_ids.map(() => 1));
      if (live) {
        let r = rustByLen.get(c.max_length);
        if (!r) rustByLen.set(c.max_length, (r = rustFromFile(join(FIX, m), c.max_length)));
        expect(await rustIds(r, c.text), c.id).toEqual(c.input_ids);
      }
    }
    // default maxLength = model_max_length
    const long = cases.find((c) => c.id === 'long_3k')!;
    expect(t.tokenize(long.text).inputIds).toEqual(long.input_ids);
    expect(t.tokenize('').inputIds).toEqual([0, 2]);
  });
});

describe('probes (multilingual, whitespace, NFKC, specials, surrogates …)', () => {
  it('the probe file covers every required category', () => {
    const cats = new Set(probes.map((p) => p.category));
    for (const c of ['special', 'whitespace', 'digits', 'jamo', 'grapheme', 'nfkc', 'control', 'surrogate', 'emoji', 'long', 'paragraph']) {
      expect(cats.has(c), c).toBe(true);
    }
    expect(probes.length).toBeGreaterThanOrEqual(300);
  });

  it('our ids equal the stored Rust ids, live Rust ids, and the library is counted before/after', async () => {
    const rust = live ? rustFromFile(TINY) : undefined;
    const lib = libFromDir(TINY);
    const all = [...cases.map((c) => ({ id: c.id, text: c.text })), ...probes.map((p) => ({ id: p.id, text: p.text }))];
    const stored = new Map<string, number[]>(probes.map((p) => [p.id, p.input_ids]));
    let before = 0;
    let after = 0;
    let liveChecked = 0;
    for (const { id, text } of all) {
      // Rust reference: live when available, else the stored ids (cases: untruncated via our own check below)
      const expected = rust ? await rustIds(rust, text) : stored.get(id);
      if (expected === undefined) continue;
      if (rust) liveChecked++;
      const storedIds = stored.get(id);
      if (storedIds) expect(expected, `stored Rust ids of ${id} are stale`).toEqual(storedIds);
      const ours = tok.tokenize(text).inputIds;
      if (!same(ours, expected)) {
        after++;
        console.log(`MISMATCH ${id} ${esc(text).slice(0, 120)}\n  ours ${JSON.stringify(ours)}\n  rust ${JSON.stringify(expected)}`);
      }
      let libIds: number[];
      try {
        libIds = lib.encode(text).ids;
      } catch {
        libIds = [];
      }
      if (!same(libIds, expected)) before++;
    }
    console.log(
      `[tokenizer parity] compared ${all.length} strings (${cases.length} cases + ${probes.length} probes; ` +
        `${liveChecked} against live Rust): @huggingface/tokenizers disagrees with Rust on ${before}, ` +
        `M3Tokenizer (with the fix layer) on ${after}`,
    );
    expect(after).toBe(0);
  });

  it('truncation at 2, 3, 16, 64, 512 equals Rust with truncation enabled (stored and live)', async () => {
    const rust = new Map<number, RustTokenizer>();
    if (live) for (const n of TRUNC) rust.set(n, rustFromFile(TINY, n));
    const long = probes.filter((p) => p.truncated !== undefined);
    expect(long.length).toBeGreaterThan(20);
    const items = [
      ...long.map((p) => ({ id: p.id, text: p.text, stored: p.truncated! })),
      ...cases.map((c) => ({ id: c.id, text: c.text, stored: {} as Record<string, number[]> })),
    ];
    let compared = 0;
    let storedCompared = 0;
    for (const { id, text, stored } of items) {
      const full = tok.tokenize(text).inputIds;
      for (const n of TRUNC) {
        const ours = tok.tokenize(text, { maxLength: n }).inputIds;
        // HF semantics: the first n−2 text tokens, then </s>
        expect(ours, `${id} @${n}`).toEqual(full.length <= n ? full : [...full.slice(0, n - 1), 2]);
        const s = stored[String(n)];
        if (s) {
          expect(ours, `${id} @${n} (stored)`).toEqual(s);
          storedCompared++;
        }
        if (live) expect(ours, `${id} @${n} (live)`).toEqual(await rustIds(rust.get(n)!, text));
        compared++;
      }
    }
    expect(tok.tokenize('', { maxLength: 2 }).inputIds).toEqual([0, 2]);
    expect(tok.tokenize('Hello world', { maxLength: 2 }).inputIds).toEqual([0, 2]);
    expect(tok.tokenize('Hello world', { maxLength: 3 }).inputIds).toEqual([0, 2188, 2]);
    console.log(`[tokenizer parity] truncation: ${compared} (text, max_length) pairs compared (${storedCompared} with stored Rust ids${live ? ', all with live Rust' : ''})`);
  });

  it('encodeBatch is a map of encode', () => {
    const texts = probes.slice(0, 120).map((p) => p.text);
    for (const opts of [undefined, { maxLength: 16 }]) {
      expect(tok.tokenizeBatch(texts, opts)).toEqual(texts.map((t) => tok.tokenize(t, opts)));
    }
    expect(tok.tokenizeBatch([])).toEqual([]);
  });

  it.runIf(live)('lone surrogates: the Rust binding sees U+FFFD; we replace them the same way', async () => {
    const rust = rustFromFile(TINY);
    for (const s of ['\ud800', 'a\udc00b', '\ude00\ud83d', '😀\ud83d', 'x\ud83d<mask>', '\ud800\ud800 z']) {
      const ours = tok.tokenize(s).inputIds;
      expect(ours).toEqual(await rustIds(rust, s));
      expect(ours).toEqual(tok.tokenize(toWellFormed(s)).inputIds);
      expect(ours).toEqual(tok.tokenize(s.replace(/[\ud800-\udfff]/g, (c, i: number) => (isPairedAt(s, i) ? c : '\ufffd'))).inputIds);
    }
  });
});

function isPairedAt(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff) return i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff;
  return i > 0 && s.charCodeAt(i - 1) >= 0xd800 && s.charCodeAt(i - 1) <= 0xdbff;
}

// ------------------------------------------------------------------------------------------------------
// components
// ------------------------------------------------------------------------------------------------------

describe('components against Rust', () => {
  const tjson = readJson(join(TINY, 'tokenizer.json')) as {
    normalizer: { normalizers: Array<{ type: string; precompiled_charsmap: string }> };
    [k: string]: unknown;
  };
  const charsmapSpec = tjson.normalizer.normalizers.find((n) => n.type === 'Precompiled')!;
  const charsmap = PrecompiledCharsmap.fromBase64(charsmapSpec.precompiled_charsmap);

  /** normalize many chunks at once: NUL is a grapheme boundary and never mapped, so it separates them */
  const batchCompare = (rustNormalize: (s: string) => string, chunks: string[]): string[] => {
    const joined = chunks.join('\0');
    const r = rustNormalize(joined).split('\0');
    const m = charsmap.normalize(joined).split('\0');
    expect(r.length).toBe(chunks.length);
    expect(m.length).toBe(chunks.length);
    const bad: string[] = [];
    chunks.forEach((c, i) => {
      if (r[i] !== m[i]) bad.push(`${esc(c)}: rust ${esc(r[i]!)} ours ${esc(m[i]!)}`);
    });
    return bad;
  };

  it.runIf(live)('Precompiled charsmap: every BMP code point, astral blocks and grapheme clusters', () => {
    const onlyCharsmap = { ...tjson, normalizer: charsmapSpec };
    const rn = rustMod!.Tokenizer.fromString(JSON.stringify(onlyCharsmap)).getNormalizer()!;
    const norm = (s: string): string => rn.normalizeString(s);
    const singles: string[] = [];
    const addRange = (a: number, b: number): void => {
      for (let cp = a; cp <= b; cp++) if (cp < 0xd800 || cp > 0xdfff) singles.push(String.fromCodePoint(cp));
    };
    addRange(1, 0xffff);
    for (const [a, b] of [[0x10000, 0x107ff], [0x1cc00, 0x1ccff], [0x1d400, 0x1d7ff], [0x1e030, 0x1e08f], [0x1f100, 0x1f2ff], [0x1f300, 0x1faff], [0x2f800, 0x2fa1f], [0xe0000, 0xe01ef]] as const) addRange(a, b);
    expect(batchCompare(norm, singles)).toEqual([]);

    // clusters below 6 UTF-8 bytes are looked up whole (shortest prefix entry wins), others per char
    const marks = ['\u0300', '\u0301', '\u0308', '\u0327', '\u0345', '\u200d', '\u200c', '\ufe0f', '\u20dd', '\u3099', '\uff9e', '\u05bc', '\u064b', '\u093c', '\u0e31', '\u1f3fb'];
    const clusters: string[] = [];
    for (let b = 0x20; b < 0x800; b += 3) for (const mk of marks) clusters.push(String.fromCodePoint(b) + mk, String.fromCodePoint(b) + mk + mk);
    for (const base of ['ﬁ', '①', 'K', 'Ω', '㍻', 'ｶ', 'ﾊ', '\u3000', '\u00a0', '\u1100', 'ㄱ']) for (const mk of marks) clusters.push(base + mk);
    for (let l = 0x1100; l <= 0x1112; l++) for (let v = 0x1161; v <= 0x1175; v += 2) clusters.push(String.fromCodePoint(l, v), String.fromCodePoint(l, v, 0x11a8 + ((l + v) % 27)));
    clusters.push('\r\n', '\n\r', '\r\r\n', '👨‍👩‍👧‍👦', '🇩🇪🇯🇵🇺', '1️⃣', 'e\u0301\u0301\u0301\u0301');
    expect(batchCompare(norm, clusters)).toEqual([]);

    // the library's Precompiled ignores the charsmap: count its single-code-point differences
    const libPrecompiled = (libFromDir(TINY) as unknown as { normalizer: { normalizers: Array<{ normalize(s: string): string }> } }).normalizer.normalizers[0]!;
    const libBad = singles.filter((s) => libPrecompiled.normalize(s) !== norm(s));
    console.log(`[charsmap] ${singles.length} single code points: library Precompiled differs on ${libBad.length} (${libBad.slice(0, 6).map((s) => s.codePointAt(0)!.toString(16)).join(', ')} …), ours on 0`);
  });

  it('grapheme windows give the same clusters as one Intl.Segmenter pass', () => {
    const seg = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
    let s = '';
    for (let i = 0; i < 400; i++) {
      s += String.fromCodePoint(0x4e00 + i) + (i % 3 ? 'e\u0301' : ' ') + (i % 7 === 0 ? '👨‍👩‍👧‍👦' : '');
      s += i % 11 === 0 ? '🇩🇪🇯🇵🇺' : i % 13 === 0 ? '\r\n' : i % 17 === 0 ? '\u1100\u1161\u11a8' : i % 19 === 0 ? 'क्षि' : '';
      if (i % 23 === 0) s += 'a' + '\u0301'.repeat(40);
    }
    const whole = [...seg.segment(s)].map((x) => x.segment);
    for (const w of [1, 2, 7, 16, 64, 256]) expect([...graphemes(seg, s, w)], `window ${w}`).toEqual(whole);
  });

  it('long inputs stay fast (no quadratic grapheme segmentation)', () => {
    const text = 'Ünïcödé テキスト 텍스트 '.repeat(4000); // ~76k UTF-16 units
    const t0 = performance.now();
    const ids = tok.tokenize(text, { maxLength: 8192 }).inputIds;
    expect(ids.length).toBe(8192);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  // ---- synthetic tokenizers isolating one component each --------------------------------------------

  const SPECIALS = ['<s>', '<pad>', '</s>', '<unk>'];
  function synth(pieces: Array<[string, number]>, extra: Record<string, unknown> = {}): { json: Record<string, unknown>; config: Record<string, unknown> } {
    const vocab: Array<[string, number]> = [...SPECIALS.map((s): [string, number] => [s, 0]), ...pieces, ['<mask>', 0]];
    const added = [...SPECIALS, '<mask>'].map((content, i) => ({
      id: i < 4 ? i : vocab.length - 1,
      content,
      single_word: false,
      lstrip: content === '<mask>',
      rstrip: false,
      normalized: false,
      special: true,
    }));
    const special = (id: string): { SpecialToken: { id: string; type_id: number } } => ({ SpecialToken: { id, type_id: 0 } });
    const json = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
      post_processor: {
        type: 'TemplateProcessing',
        single: [special('<s>'), { Sequence: { id: 'A', type_id: 0 } }, special('</s>')],
        pair: [special('<s>'), { Sequence: { id: 'A', type_id: 0 } }, special('</s>'), special('</s>'), { Sequence: { id: 'B', type_id: 0 } }, special('</s>')],
        special_tokens: { '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] }, '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] } },
      },
      decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
      model: { type: 'Unigram', unk_id: 3, vocab, byte_fallback: false },
      ...extra,
    };
    const config = { bos_token: '<s>', eos_token: '</s>', pad_token: '<pad>', unk_token: '<unk>', mask_token: '<mask>', model_max_length: 512 };
    return { json, config };
  }

  async function threeWay(s: ReturnType<typeof synth>, text: string): Promise<{ rust: number[]; lib: number[]; ours: number[] }> {
    const rust = await rustIds(rustMod!.Tokenizer.fromString(JSON.stringify(s.json)), text);
    const lib = new LibTokenizer(s.json, s.config).encode(text).ids;
    const ours = new M3Tokenizer(s.json, s.config).tokenize(text).inputIds;
    return { rust, lib, ours };
  }

  it.runIf(live)('Metaspace split: a piece spanning "▁" is not used across words (library: it is)', async () => {
    const s = synth([['▁', -2], ['a', -3], ['b', -3], ['▁a', -3], ['▁b', -3], ['a▁b', -0.5]]);
    const r = await threeWay(s, 'a b');
    expect(r.rust).toEqual([0, 7, 8, 2]); // ▁a ▁b
    expect(r.ours).toEqual(r.rust);
    expect(r.lib).toEqual([0, 4, 9, 2]); // ▁ a▁b
  });

  it.runIf(live)('Metaspace split: unknown characters are fused within a word only', async () => {
    const s = synth([['a', -3], ['b', -3]]); // no "▁" piece: every space is unknown too
    const r = await threeWay(s, '𓀀 𓀀');
    expect(r.rust).toEqual([0, 3, 3, 2]);
    expect(r.ours).toEqual(r.rust);
    expect(r.lib).toEqual([0, 3, 2]);
  });

  it.runIf(live)('Replace inserts its content literally (library: "$&" is a replacement pattern)', async () => {
    const s = synth([['▁', -2], ['x', -3], ['$', -3], ['&', -3], ['y', -3]], {
      normalizer: { type: 'Replace', pattern: { String: 'x' }, content: '$&$&y' },
    });
    const r = await threeWay(s, 'x');
    expect(r.ours).toEqual(r.rust);
    expect(r.rust).toEqual([0, 4, 6, 7, 6, 7, 8, 2]);
    expect(r.lib).toEqual([0, 4, 5, 5, 8, 2]);
  });

  it.runIf(live)('Viterbi ties: equal-score segmentations resolve like Rust (longest last piece)', async () => {
    const s = synth([['▁', -2], ['a', -1], ['aa', -2], ['aaa', -3], ['▁a', -3], ['▁aa', -4], ['9', -1], ['99', -2]]);
    for (const text of ['aaaa', 'aaaaaaa', 'aa aaa', '999999999', 'a9a99aa999']) {
      const r = await threeWay(s, text);
      expect(r.ours, text).toEqual(r.rust);
      expect(r.lib, text).toEqual(r.rust);
    }
  });

  it.runIf(live)('Metaspace and normalizer variants (prepend schemes, legacy add_prefix_space, no split, Strip, Lowercase)', async () => {
    const pieces: Array<[string, number]> = [['▁', -2], ['a', -3], ['b', -3], ['▁a', -2.5], ['▁b', -2.5], ['A', -3], ['▁A', -2.5]];
    const variants: Array<Record<string, unknown>> = [
      { pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: true } },
      { pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'never', split: true } },
      { pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: false } },
      { pre_tokenizer: { type: 'Metaspace', replacement: '▁', add_prefix_space: true } },
      { pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' }, { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true }] } },
      { normalizer: { type: 'Sequence', normalizers: [{ type: 'Strip', strip_left: true, strip_right: true }, { type: 'Lowercase' }] } },
      { normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] } },
    ];
    for (const v of variants) {
      const s = synth(pieces, v);
      for (const text of ['a b', ' ab  ba ', '<s>a b</s>b', 'A\ufeff b\u0085', 'x<mask> a', '\u00a0a\u2003b ']) {
        const r = await threeWay(s, text);
        expect(r.ours, `${JSON.stringify(v)} ${esc(text)}`).toEqual(r.rust);
      }
    }
  });

  /** A synthetic tokenizer whose only normalizer is Replace(pattern → "#"): one id per character, so ids show the normalized text. */
  function replaceSynth(pattern: Record<string, string>): ReturnType<typeof synth> {
    const chars = [...'abcdefghijklmnopqrstuvwxyzABCXYZ0123456789#-.,!\n'];
    return synth([['▁', -2], ...chars.map((c): [string, number] => [c, -3])], {
      normalizer: { type: 'Replace', pattern, content: '#' },
    });
  }

  it.runIf(live)('Replace regexes run on RE2 and give the Rust (Oniguruma) ids: classes, anchors, empty matches, groups, flags', async () => {
    const patterns = [
      ' {2,}', '\\s+', '^\\s+|\\s+$', '\\d+', '[a-c]+', 'b*', 'x?', '(?i)AB', '\\p{P}', '\\p{^L}', '.', 'a|ab', '(?:ab)+',
      '[^a-z ]', '\\x{2581}', '\\x41', 'a{,2}', 'a{2}', 'a{1,}', '\\A ', ' \\z', '\\w+', '\\W', '[\\d\\s]', '^', '$', '\\h+',
      '(a)(b)?', '(?<n>c)', '[]a]', '\\.', 'é', '\\p{Han}', '(?m)a.b', 'a.b', 'b+?', '\\{', 'x{', '[\\]\\-]',
    ];
    const texts = ['a b', ' ab  ba ', 'abc 123 ABab', 'x\ny  z\n', 'café, 北京!', '9a99 aab', '\u00a0a\u2003b ', 'aaa', 'a\nb A{b} x{ ]-', '٣٤ ABC'];
    let compared = 0;
    for (const pattern of patterns) {
      const s = replaceSynth({ Regex: pattern });
      const rust = rustMod!.Tokenizer.fromString(JSON.stringify(s.json));
      const ours = new M3Tokenizer(s.json, s.config);
      for (const text of texts) {
        expect(ours.tokenize(text).inputIds, `${esc(pattern)} on ${esc(text)}`).toEqual(await rustIds(rust, text));
        compared++;
      }
    }
    console.log(`Replace regexes: ${patterns.length} patterns x ${texts.length} texts = ${compared} encodings equal to Rust`);
    // String patterns: literal, and the empty string matches nothing.
    for (const pattern of ['ab', '', '.']) {
      const s = replaceSynth({ String: pattern });
      const rust = rustMod!.Tokenizer.fromString(JSON.stringify(s.json));
      for (const text of texts) expect(new M3Tokenizer(s.json, s.config).tokenize(text).inputIds, `String ${esc(pattern)}`).toEqual(await rustIds(rust, text));
    }
  });

  it('a catastrophic-backtracking Replace regex (a+)+$ runs in linear time (JS RegExp and Rust take exponential time)', () => {
    const s = replaceSynth({ Regex: '(a+)+$' });
    const plain = replaceSynth({ String: 'zzz' }); // same vocabulary, a Replace that never matches here
    const t0 = performance.now();
    const tok = new M3Tokenizer(s.json, s.config);
    const noMatch = 'a'.repeat(5000) + 'b';
    const ids = tok.tokenize(noMatch).inputIds; // no match: the text is unchanged
    const allA = tok.tokenize('a'.repeat(5000)).inputIds; // one match: the whole text becomes "#"
    const ms = performance.now() - t0;
    console.log(`(a+)+$ on 5000 characters, twice: ${ms.toFixed(0)} ms (JS RegExp needs seconds for 30)`);
    expect(ids).toEqual(new M3Tokenizer(plain.json, plain.config).tokenize(noMatch).inputIds);
    expect(allA).toEqual(new M3Tokenizer(plain.json, plain.config).tokenize('#').inputIds);
  });

  it('Replace regexes the linear-time engine cannot run are refused at load, naming the pattern and the construct', () => {
    const refused: Array<[string, RegExp]> = [
      ['(?=a)', /look-around group '\(\?='/], ['(?<!a)b', /look-around group '\(\?<!'/], ['(a)\\1', /back-reference/],
      ['a++', /possessive quantifier 'a?\+\+'/], ['(?>a)', /atomic group/], ['\\bword', /word boundary/], ['a\\Z', /\\Z/],
      ['a{1001}', /repeat count above 1000/], ['[[:alpha:]]', /POSIX bracket/], ['[a[b]]', /nested character class/],
      ['[a&&b]', /intersection/], ['(?x) a', /extended-mode/], ['a**', /repetition/], ['\\p{Script=Han}', /property/],
      ['\\p{NoSuchProperty}', /RE2 refuses it/], ['(', /RE2 refuses it/], ['[a', /unterminated character class/],
    ];
    for (const [pattern, re] of refused) {
      const s = replaceSynth({ Regex: pattern });
      let msg = '';
      try { new M3Tokenizer(s.json, s.config); } catch (e) { msg = (e as Error).message; }
      expect(msg, pattern).toMatch(re);
      expect(msg).toContain(JSON.stringify(pattern));
      expect(msg).toMatch(/normalizer\.pattern: Regex pattern .* cannot be run by the linear-time engine/);
    }
    console.log(`${refused.length} unsupported patterns refused at load, e.g. ${(() => { try { const s = replaceSynth({ Regex: '(?=a)' }); new M3Tokenizer(s.json, s.config); } catch (e) { return (e as Error).message; } return ''; })()}`);
  });

  it('unsupported components are rejected, not approximated', () => {
    const s = synth([['▁', -2]], { pre_tokenizer: { type: 'ByteLevel' } });
    expect(() => new M3Tokenizer(s.json, s.config)).toThrow(/unsupported pre-tokenizer type "ByteLevel"/);
    const s2 = synth([['▁', -2]], { normalizer: { type: 'BertNormalizer' } });
    expect(() => new M3Tokenizer(s2.json, s2.config)).toThrow(/unsupported normalizer type "BertNormalizer"/);
    const s3 = synth([['▁', -2]]);
    (s3.json.model as Record<string, unknown>).byte_fallback = true;
    expect(() => new M3Tokenizer(s3.json, s3.config)).toThrow(/byte_fallback/);
  });
});

// ------------------------------------------------------------------------------------------------------
// the library's disagreements: root causes, ablation, upstream repros
// ------------------------------------------------------------------------------------------------------

describe('@huggingface/tokenizers vs Rust: root causes', () => {
  /**
   * Minimal repros for the upstream report (tiny-m3 tokenizer.json, same layout as BAAI/bge-m3).
   * `rust` is what the Rust library gives (checked live below), `lib` what @huggingface/tokenizers 0.2.0 gives.
   */
  const REPROS: Array<{ cause: string; text: string; rust: number[]; lib: number[] }> = [
    { cause: 'Precompiled ignores the charsmap: ZWJ U+200D kept by the charsmap, mapped to a space', text: 'a\u200db', rust: [0, 67, 6171, 60, 2], lib: [0, 67, 365, 2] },
    { cause: 'Precompiled ignores the charsmap: NFKC composes conjoining jamo, the charsmap does not', text: '\u1100\u1161\u11a8', rust: [0, 4, 3, 2], lib: [0, 1641, 2] },
    { cause: 'Precompiled ignores the charsmap: NFKC composes halfwidth kana + voiced mark', text: '\uff76\uff9e', rust: [0, 4, 3637, 3, 2], lib: [0, 4, 6740, 2] },
    { cause: 'Precompiled ignores the charsmap: clusters < 6 bytes use the first prefix entry (accent dropped)', text: '\ufb01\u0301', rust: [0, 3404, 2], lib: [0, 328, 449, 2] },
    { cause: 'Precompiled ignores the charsmap: code points newer than the charsmap are NFKC-mapped', text: '\ua7f2', rust: [0, 4, 3, 2], lib: [0, 196, 2] },
    { cause: 'lone surrogate: Rust binding receives U+FFFD (→ space), library keeps it as an unknown char', text: 'a\ud800b', rust: [0, 67, 365, 2], lib: [0, 67, 3, 60, 2] },
    { cause: 'added-token lstrip uses JS whitespace: U+0085 is whitespace in Rust', text: 'a\u0085<mask>', rust: [0, 67, 8001, 2], lib: [0, 67, 3, 8001, 2] },
    { cause: 'added-token lstrip uses JS whitespace: U+FEFF is not whitespace in Rust', text: 'a\ufeff<mask>', rust: [0, 67, 4, 8001, 2], lib: [0, 67, 8001, 2] },
    { cause: 'normalized section equal to an added token is emitted as that token', text: '\uff1cs\uff1e', rust: [0, 4, 0, 2], lib: [0, 0, 2] },
    { cause: 'Unigram overwrites the <unk> piece score with the unknown penalty', text: 'x \uff1cunk\uff1e', rust: [0, 4, 41, 4, 3, 2], lib: [0, 4, 41, 31, 147, 44, 28, 2] },
  ];

  it('each minimal repro: ours = Rust; the library differs', async () => {
    const lib = libFromDir(TINY);
    const rust = live ? rustFromFile(TINY) : undefined;
    const lines: string[] = [];
    for (const r of REPROS) {
      if (rust) expect(await rustIds(rust, r.text), r.cause).toEqual(r.rust);
      expect(tok.tokenize(r.text).inputIds, r.cause).toEqual(r.rust);
      const libIds = lib.encode(r.text).ids;
      lines.push(`  ${r.cause}\n    ${esc(r.text)}  rust ${JSON.stringify(r.rust)}  library ${JSON.stringify(libIds)}${same(libIds, r.lib) ? '' : ' (changed since 0.2.0!)'}`);
    }
    console.log(`[upstream repros]\n${lines.join('\n')}`);
  });

  it('ablation: which fix each disagreeing probe needs (library + our components)', () => {
    const tj = readJson(join(TINY, 'tokenizer.json')) as { normalizer: unknown; pre_tokenizer: unknown; added_tokens: Array<{ content: string }> };
    const norm = buildNormalizer(tj.normalizer)!;
    const pre = buildPreTokenizer(tj.pre_tokenizer)!;
    const FIXES = ['charsmap', 'unkScore', 'split'] as const;
    type Fix = (typeof FIXES)[number];
    const make = (fixes: ReadonlySet<Fix>): ((text: string) => number[]) => {
      const lib = libFromDir(TINY) as unknown as {
        normalizer: unknown;
        pre_tokenizer: unknown;
        model: { scores: number[] };
        encode(t: string): { ids: number[] };
      };
      // the charsmap fix includes the surrogate → U+FFFD step (the charsmap maps U+FFFD to a space)
      if (fixes.has('charsmap')) lib.normalizer = (t: string): string => norm(toWellFormed(t));
      if (fixes.has('unkScore')) lib.model.scores[3] = 0;
      if (fixes.has('split')) lib.pre_tokenizer = (t: string): string[] => pre(t, false);
      return (t) => lib.encode(t).ids;
    };
    const subsets: Fix[][] = [[]];
    for (const f of FIXES) for (const s of [...subsets]) subsets.push([...s, f]);
    subsets.sort((a, b) => a.length - b.length);
    const encoders = subsets.map((s) => ({ fixes: s, enc: make(new Set(s)) }));
    const specials = new Set(tj.added_tokens.map((a) => a.content));
    const counts = new Map<string, { n: number; example: string }>();
    // the library does not truncate: use the untruncated cases
    const all = [
      ...cases.map((c) => ({ text: c.text, ids: c.max_length === 8192 ? c.input_ids : undefined })),
      ...probes.map((p) => ({ text: p.text, ids: p.input_ids })),
    ];
    let disagreeing = 0;
    for (const { text, ids } of all) {
      if (ids === undefined) continue;
      if (same(encoders[0]!.enc(text), ids)) continue;
      disagreeing++;
      const fixedBy = encoders.find((e) => same(e.enc(text), ids));
      let key: string;
      if (fixedBy) key = `needs ${fixedBy.fixes.join(' + ')}`;
      else {
        // left: the added-token handling inside the library's Tokenizer.encode_text (not patchable)
        const lstripWs = /[\u0085\ufeff][\p{White_Space}\ufeff]*<mask>/u.test(text);
        const normalizedIsSpecial = tok.explain(text).some((s) => s.tokenId === undefined && s.normalized !== undefined && specials.has(s.normalized));
        key = lstripWs && normalizedIsSpecial ? 'added tokens: lstrip whitespace set + normalized special' : lstripWs ? 'added tokens: lstrip whitespace set (U+0085/U+FEFF)' : normalizedIsSpecial ? 'added tokens: normalized section equals a special token' : 'UNEXPLAINED';
      }
      const c = counts.get(key) ?? { n: 0, example: esc(text).slice(0, 60) };
      c.n++;
      counts.set(key, c);
    }
    console.log(
      `[ablation] ${disagreeing} of ${all.length} strings disagree with plain @huggingface/tokenizers; smallest fix set per string:\n` +
        [...counts.entries()].map(([k, v]) => `  ${String(v.n).padStart(4)}  ${k}   e.g. ${v.example}`).join('\n'),
    );
    expect(counts.has('UNEXPLAINED')).toBe(false);
  });
});
