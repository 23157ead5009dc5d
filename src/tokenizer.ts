/**
 * BGE-M3 (XLM-RoBERTa) tokenizer: `tokenizer.json` + `tokenizer_config.json` → input ids, with the same ids
 * as the Rust HF `tokenizers` library (what `transformers`' fast tokenizer and FlagEmbedding use).
 *
 * Pipeline, mirroring Rust `Tokenizer::encode` for one sequence:
 *   1. lone UTF-16 surrogates → U+FFFD (what the Rust binding receives for such a JS string)
 *   2. added tokens (`<s>`, `</s>`, `<pad>`, `<unk>`, `<mask>` …) that are not `normalized` are cut out of
 *      the raw text (leftmost-longest, lstrip/rstrip with Rust whitespace)
 *   3. every remaining section is normalized (Precompiled charsmap, then Replace " {2,}" → " ")
 *   4. `normalized` added tokens are cut out of the normalized sections
 *   5. Metaspace: " " → "▁", "▁" prepended, split before every "▁"
 *   6. Unigram (Viterbi) per word
 *   7. right truncation to `maxLength − #specials`, then the post-processor template (`<s> $A </s>`)
 *
 * Steps 2, 3 (Precompiled), 5 and the `<unk>` score in 6 replace the corresponding parts of
 * `@huggingface/tokenizers`, which give different ids from Rust (see `src/tokenizer/*.ts` for each
 * cause); the library still provides the Unigram lattice. Replace regexes run on RE2 (`src/tokenizer/regex.ts`).
 */
import { joinPath, readTextFileSync } from './host/files.js';
import type { ModelFolder } from './weights/folder.js';
import {
  AddedTokenMatcher,
  buildNormalizer,
  buildPreTokenizer,
  parseAddedTokens,
  toWellFormed,
  type AddedTokenSpec,
  type NormalizeFn,
  type PreTokenizeFn,
} from './tokenizer/pipeline.js';
import { boundedIds, prefixCutIsSafe, sectionIds, withoutLastWord } from './tokenizer/truncation.js';
import { UnigramModel, type UnigramConfig } from './tokenizer/unigram.js';

export interface TokenizeOptions {
  /**
   * Truncate so that the result (special tokens included) has at most this many ids; integer ≥ 2.
   * Right truncation keeping `</s>`, like HF `tokenizer(text, truncation=True, max_length=maxLength)`.
   * Default: `model_max_length` from tokenizer_config.json (no truncation when that is absent/huge).
   */
  maxLength?: number;
}

export interface DecodeOptions {
  /** drop special added tokens (`<s>`, `</s>`, `<pad>`, `<unk>`, `<mask>`); default false */
  skipSpecialTokens?: boolean;
  /**
   * apply transformers' `clean_up_tokenization` (" ." → "." …); default: `clean_up_tokenization_spaces`
   * from tokenizer_config.json, as HF `tokenizer.decode` does (the Rust library itself never does this)
   */
  cleanUpTokenizationSpaces?: boolean;
}

export interface TokenizedText {
  inputIds: number[];
  attentionMask: number[];
}

/** One step-by-step view of `tokenize` (see {@link M3Tokenizer.explain}). */
export interface ExplainedSection {
  /** raw text of the section (for an added token: the matched text including stripped spaces) */
  text: string;
  /** set when the section is an added token */
  tokenId?: number;
  /** normalized text (plain sections only) */
  normalized?: string;
  /** pre-tokens and their ids (plain sections only) */
  words?: Array<{ word: string; ids: number[] }>;
}

type Json = Record<string, unknown>;

/** tokenizer_config.json `model_max_length` values above this mean "no limit" (HF writes 1e30 then). */
const HUGE_MAX_LENGTH = 1_000_000_000;

export class M3Tokenizer {
  /** `model_max_length` (Infinity when the config has none). */
  readonly modelMaxLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number;
  readonly maskId: number;
  /** Number of ids (= rows of the embedding matrix): max(model vocab, largest added-token id + 1). */
  readonly vocabSize: number;

  private readonly model: UnigramModel;
  private readonly normalizer: NormalizeFn | null;
  private readonly preTokenizer: PreTokenizeFn | null;
  private readonly rawMatcher: AddedTokenMatcher;
  private readonly normalizedMatcher: AddedTokenMatcher;
  private readonly addedById = new Map<number, AddedTokenSpec>();
  private readonly addedByContent = new Map<string, AddedTokenSpec>();
  private readonly prefixIds: number[];
  private readonly suffixIds: number[];
  private readonly decodeTokens: ((tokens: string[]) => string) | Error;
  private readonly cleanUpDefault: boolean;
  /** Whether truncation may tokenize a prefix of the text (see `src/tokenizer/truncation.ts`). */
  private readonly prefixTruncation: boolean;
  private readonly segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

  /**
   * @param tokenizerJson parsed tokenizer.json
   * @param config parsed tokenizer_config.json
   * @param source names used in error messages
   */
  constructor(tokenizerJson: unknown, config: unknown, source = { tokenizer: 'tokenizer.json', config: 'tokenizer_config.json' }) {
    const file = source.tokenizer; // named in error messages
    if (!isJson(tokenizerJson)) throw new Error(`${file}: expected a JSON object`);
    if (!isJson(config)) throw new Error(`${source.config}: expected a JSON object`);
    const modelSpec = tokenizerJson.model;
    if (!isJson(modelSpec)) throw new Error(`${file}: missing "model"`);
    if (modelSpec.type !== undefined && modelSpec.type !== 'Unigram') {
      throw new Error(`${file}: model type "${String(modelSpec.type)}" is not supported (expected Unigram)`);
    }
    this.model = new UnigramModel(modelSpec as unknown as UnigramConfig, file);
    this.normalizer = wrapErr(file, () => buildNormalizer(tokenizerJson.normalizer));
    this.preTokenizer = wrapErr(file, () => buildPreTokenizer(tokenizerJson.pre_tokenizer));

    const added = parseAddedTokens(tokenizerJson.added_tokens, file);
    for (const t of added) {
      this.addedById.set(t.id, t);
      this.addedByContent.set(t.content, t);
    }
    this.rawMatcher = new AddedTokenMatcher(added.filter((t) => !t.normalized));
    // Rust matches `normalized` added tokens by their normalized content
    const normalize = this.normalizer;
    this.normalizedMatcher = new AddedTokenMatcher(
      added.filter((t) => t.normalized).map((t) => ({ ...t, content: normalize ? normalize(t.content) : t.content })),
    );

    this.prefixTruncation =
      added.every((t) => !t.normalized) &&
      prefixCutIsSafe(tokenizerJson.normalizer, tokenizerJson.pre_tokenizer, added.map((t) => t.content));

    let maxId = this.model.pieces.length - 1;
    for (const t of added) maxId = Math.max(maxId, t.id);
    this.vocabSize = maxId + 1;

    const mml = config.model_max_length;
    this.modelMaxLength =
      typeof mml === 'number' && Number.isInteger(mml) && mml >= 2 && mml <= HUGE_MAX_LENGTH ? mml : Infinity;

    const special = (key: string, ...fallbacks: string[]): number => {
      for (const k of [key, ...fallbacks]) {
        const v = config[k];
        const content = typeof v === 'string' ? v : isJson(v) && typeof v.content === 'string' ? v.content : undefined;
        if (content === undefined) continue;
        const id = this.tokenToId(content);
        if (id === undefined) throw new Error(`${source.config}: ${k} "${content}" is not in ${file}`);
        return id;
      }
      throw new Error(`${source.config}: missing "${key}"`);
    };
    this.bosId = special('bos_token', 'cls_token');
    this.eosId = special('eos_token', 'sep_token');
    this.padId = special('pad_token');
    this.unkId = special('unk_token');
    this.maskId = special('mask_token');

    this.decodeTokens = buildDecoder(tokenizerJson.decoder, file);
    this.cleanUpDefault = config.clean_up_tokenization_spaces !== false;

    [this.prefixIds, this.suffixIds] = parsePostProcessor(tokenizerJson.post_processor, file, (t) => this.tokenToId(t));
  }

  /** Loads `tokenizer.json` and `tokenizer_config.json` from a model snapshot folder. */
  static async fromDir(dir: string): Promise<M3Tokenizer> {
    return M3Tokenizer.fromDirSync(dir);
  }

  static fromDirSync(dir: string): M3Tokenizer {
    const tokPath = joinPath(dir, 'tokenizer.json');
    const cfgPath = joinPath(dir, 'tokenizer_config.json');
    return new M3Tokenizer(readJson(tokPath), readJson(cfgPath), { tokenizer: tokPath, config: cfgPath });
  }

  /** Loads the two files from any model folder: a directory, a folder URL, picked files (weights/folder.ts). */
  static async fromFolder(folder: ModelFolder): Promise<M3Tokenizer> {
    const read = async (f: string): Promise<unknown> => {
      const path = folder.path(f);
      let text: string;
      try {
        text = await folder.text(f);
      } catch (e) {
        const msg = (e as Error).message;
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${path}: file not found`);
        throw msg.startsWith(path) ? e : new Error(`${path}: cannot read (${msg})`);
      }
      return parseJson(text, path);
    };
    const [tok, cfg] = await Promise.all([read('tokenizer.json'), read('tokenizer_config.json')]);
    return new M3Tokenizer(tok, cfg, { tokenizer: folder.path('tokenizer.json'), config: folder.path('tokenizer_config.json') });
  }

  /** Number of special ids the post-processor adds around one sequence (2: `<s>` … `</s>`). */
  get numSpecialTokens(): number {
    return this.prefixIds.length + this.suffixIds.length;
  }

  /** `<s> … </s>` ids of one text, truncated to `maxLength` (HF `Tokenizer.encode` of one sequence). */
  tokenize(text: string, opts?: TokenizeOptions): TokenizedText {
    if (typeof text !== 'string') throw new TypeError(`text must be a string, got ${describe(text)}`);
    const maxLength = this.resolveMaxLength(opts);
    return this.tokenizeChecked(text, maxLength);
  }

  /** Tokenizes each text like {@link tokenize}; no padding (the model pads). */
  tokenizeBatch(texts: string[], opts?: TokenizeOptions): TokenizedText[] {
    if (!Array.isArray(texts)) throw new TypeError(`texts must be an array of strings, got ${describe(texts)}`);
    texts.forEach((t, i) => {
      if (typeof t !== 'string') throw new TypeError(`texts[${i}] must be a string, got ${describe(t)}`);
    });
    const maxLength = this.resolveMaxLength(opts);
    return texts.map((t) => this.tokenizeChecked(t, maxLength));
  }

  /** Text ids without specials and without truncation. */
  textIds(text: string): number[] {
    if (typeof text !== 'string') throw new TypeError(`text must be a string, got ${describe(text)}`);
    return sectionIds(this.explain(text));
  }

  /** The pipeline stage by stage for one text (sections, normalized text, pre-tokens, ids). */
  explain(text: string): ExplainedSection[] {
    if (typeof text !== 'string') throw new TypeError(`text must be a string, got ${describe(text)}`);
    const out: ExplainedSection[] = [];
    let rawOffset = 0;
    for (const section of this.rawMatcher.split(toWellFormed(text))) {
      const atStart = rawOffset === 0;
      rawOffset += section.text.length;
      if (section.tokenId !== undefined) {
        out.push({ text: section.text, tokenId: section.tokenId });
        continue;
      }
      const normalized = this.normalizer ? this.normalizer(section.text) : section.text;
      const pieces = this.normalizedMatcher.split(normalized);
      const words: Array<{ word: string; ids: number[] }> = [];
      const flush = (): void => {
        if (words.length > 0) out.push({ text: section.text, normalized, words: words.splice(0) });
      };
      pieces.forEach((piece, j) => {
        if (piece.tokenId !== undefined) {
          flush();
          out.push({ text: piece.text, tokenId: piece.tokenId });
          return;
        }
        const preTokens = this.preTokenizer ? this.preTokenizer(piece.text, atStart && j === 0) : [piece.text];
        for (const w of preTokens) if (w.length > 0) words.push({ word: w, ids: this.model.encodeWord(w) });
      });
      flush();
    }
    return out;
  }

  /** The normalizer alone (Precompiled charsmap + Replace). */
  normalize(text: string): string {
    if (typeof text !== 'string') throw new TypeError(`text must be a string, got ${describe(text)}`);
    const t = toWellFormed(text);
    return this.normalizer ? this.normalizer(t) : t;
  }

  /** Token string of an id (added tokens first, then the model vocabulary), like Rust `id_to_token`. */
  idToToken(id: number): string {
    if (typeof id !== 'number' || !Number.isInteger(id)) throw new TypeError(`id must be an integer, got ${describe(id)}`);
    const added = this.addedById.get(id);
    if (added) return added.content;
    const piece = id >= 0 ? this.model.pieces[id] : undefined;
    if (piece === undefined) throw new RangeError(`id ${id} is outside the vocabulary (0 … ${this.vocabSize - 1})`);
    return piece;
  }

  /**
   * Text of token ids, like HF `tokenizer.decode(ids)`: Rust `Tokenizer::decode` (ids → token strings,
   * optionally without special tokens, then the Metaspace decoder: "▁" → " ", dropped in the first token)
   * followed by transformers' clean-up when enabled. `decode([id])` is what FlagEmbedding's
   * `convert_id_to_token` uses as the key of a lexical weight.
   */
  decode(ids: readonly number[], opts?: DecodeOptions): string {
    if (!Array.isArray(ids)) throw new TypeError(`ids must be an array of integers, got ${describe(ids)}`);
    const tokens: string[] = [];
    ids.forEach((id, i) => {
      if (typeof id !== 'number' || !Number.isInteger(id)) throw new TypeError(`ids[${i}] must be an integer, got ${describe(id)}`);
      const added = this.addedById.get(id);
      if (added?.special && opts?.skipSpecialTokens === true) return;
      tokens.push(this.idToToken(id));
    });
    if (this.decodeTokens instanceof Error) throw this.decodeTokens;
    const text = this.decodeTokens(tokens);
    return (opts?.cleanUpTokenizationSpaces ?? this.cleanUpDefault) ? cleanUpTokenization(text) : text;
  }

  /** `decode([id])`: the text of one token (FlagEmbedding `convert_id_to_token` keys). */
  decodeId(id: number): string {
    return this.decode([id]);
  }

  /** Id of a token string (added tokens first, then the vocabulary), or undefined when unknown. */
  tokenToId(token: string): number | undefined {
    if (typeof token !== 'string') throw new TypeError(`token must be a string, got ${describe(token)}`);
    return this.addedByContent.get(token)?.id ?? this.model.tokenToId(token);
  }

  private resolveMaxLength(opts: TokenizeOptions | undefined): number {
    if (opts !== undefined && (typeof opts !== 'object' || opts === null)) {
      throw new TypeError(`opts must be an object, got ${describe(opts)}`);
    }
    const m = opts?.maxLength;
    if (m === undefined) return this.modelMaxLength;
    if (typeof m !== 'number' || !Number.isInteger(m) || m < 2) {
      throw new RangeError(`maxLength must be an integer >= 2, got ${typeof m === 'number' ? String(m) : describe(m)}`);
    }
    if (m < this.numSpecialTokens) {
      throw new RangeError(`maxLength must be >= ${this.numSpecialTokens} (the special tokens), got ${m}`);
    }
    return m;
  }

  private tokenizeChecked(text: string, maxLength: number): TokenizedText {
    const room = maxLength - this.numSpecialTokens;
    const ids =
      room === Infinity || !this.prefixTruncation
        ? this.textIds(text).slice(0, room)
        : boundedIds(text, room, this.segmenter, (prefix) => sectionIds(withoutLastWord(this.explain(prefix))), (t) => this.textIds(t));
    const inputIds = [...this.prefixIds, ...ids, ...this.suffixIds];
    return { inputIds, attentionMask: new Array<number>(inputIds.length).fill(1) };
  }
}

function parsePostProcessor(
  spec: unknown,
  file: string,
  idOf: (token: string) => number | undefined,
): [number[], number[]] {
  if (spec === null || spec === undefined) return [[], []];
  if (!isJson(spec)) throw new Error(`${file}: post_processor must be an object`);
  const pair = (v: unknown, what: string): number => {
    if (Array.isArray(v) && typeof v[1] === 'number') return v[1];
    throw new Error(`${file}: post_processor.${what} must be [token, id]`);
  };
  switch (spec.type) {
    case 'RobertaProcessing':
    case 'BertProcessing':
      return [[pair(spec.cls, 'cls')], [pair(spec.sep, 'sep')]];
    case 'TemplateProcessing': {
      const single = spec.single;
      const specials = isJson(spec.special_tokens) ? spec.special_tokens : {};
      if (!Array.isArray(single)) throw new Error(`${file}: TemplateProcessing without "single"`);
      const prefix: number[] = [];
      const suffix: number[] = [];
      let seenA = false;
      for (const item of single) {
        if (isJson(item) && isJson(item.Sequence)) {
          if (item.Sequence.id !== 'A' || seenA) throw new Error(`${file}: unsupported single template`);
          seenA = true;
        } else if (isJson(item) && isJson(item.SpecialToken) && typeof item.SpecialToken.id === 'string') {
          const key = item.SpecialToken.id;
          const entry = specials[key];
          let ids: number[] | undefined;
          if (isJson(entry) && Array.isArray(entry.ids) && entry.ids.every((x) => Number.isInteger(x))) ids = entry.ids as number[];
          else {
            const id = idOf(key);
            if (id !== undefined) ids = [id];
          }
          if (ids === undefined) throw new Error(`${file}: template special token "${key}" has no id`);
          (seenA ? suffix : prefix).push(...ids);
        } else throw new Error(`${file}: unsupported template item ${JSON.stringify(item)}`);
      }
      if (!seenA) throw new Error(`${file}: single template has no $A`);
      return [prefix, suffix];
    }
    default:
      throw new Error(`${file}: unsupported post_processor type "${String(spec.type)}"`);
  }
}

function buildDecoder(spec: unknown, file: string): ((tokens: string[]) => string) | Error {
  if (spec === null || spec === undefined) return (tokens) => tokens.join(' ');
  if (isJson(spec) && spec.type === 'Metaspace') {
    const rep = typeof spec.replacement === 'string' ? spec.replacement : '\u2581';
    const scheme = typeof spec.prepend_scheme === 'string' ? spec.prepend_scheme : spec.add_prefix_space === false ? 'never' : 'always';
    return (tokens) =>
      tokens.map((tok, i) => tok.split(rep).join(i === 0 && scheme !== 'never' ? '' : ' ')).join('');
  }
  // decoding is optional for embedding; only fail when it is asked for
  return new Error(`${file}: unsupported decoder ${JSON.stringify(isJson(spec) ? spec.type : spec)}`);
}

/** transformers `PreTrainedTokenizerBase.clean_up_tokenization`. */
function cleanUpTokenization(text: string): string {
  return text
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readTextFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `${path}: file not found` : `${path}: cannot read (${String(e)})`);
  }
  return parseJson(text, path);
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`${path}: invalid JSON (${(e as Error).message})`);
  }
}

function wrapErr<T>(file: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(msg.startsWith(file) ? msg : `${file}: ${msg}`);
  }
}

function isJson(x: unknown): x is Json {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'array';
  return typeof x;
}
