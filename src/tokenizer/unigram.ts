/**
 * Unigram model: the `@huggingface/tokenizers` lattice/Viterbi with one correction, run word by word.
 *
 * Correction: the library's `Unigram` constructor overwrites the score of the `<unk>` *vocabulary piece*
 * with the unknown-character penalty (`this.scores[this.unk_token_id] = this.unk_score`). Rust keeps the
 * piece's own score (0.0 in XLM-R files) and uses the penalty (min score − 10) only for the synthetic node
 * of a character that has no single-character piece. The difference shows when normalization produces the
 * literal text `<unk>` (e.g. fullwidth `＜unk＞`, which is not matched as an added token because added
 * tokens are matched before normalization): Rust emits the piece `<unk>` (id 3), the library splits it.
 *
 * Words are tokenized one at a time so that unknown-character fusion (consecutive `<unk>` merged into one)
 * never crosses a pre-token boundary, as in Rust where each pre-token is a separate model call.
 *
 * Tie-breaking: Rust (`encode_optimized`) keeps, for every end position, the first (leftmost-starting)
 * best path; the library's lattice keeps, for every node, the first best predecessor. Both give the path
 * whose last piece is the longest among equal-score paths (`999999999` → `9 99 99 99 99`); probes confirm.
 */
import { Unigram, type LibUnigram } from './lib.js';

export interface UnigramConfig {
  type?: string;
  unk_id?: number | null;
  vocab: Array<[string, number]>;
  byte_fallback?: boolean;
}

export class UnigramModel {
  readonly pieces: string[];
  readonly unkId: number;
  private readonly lib: LibUnigram;
  private readonly pieceToId: Map<string, number>;

  constructor(config: UnigramConfig, file: string) {
    if (!Array.isArray(config.vocab) || config.vocab.length === 0) {
      throw new Error(`${file}: model.vocab must be a non-empty [piece, score] list`);
    }
    config.vocab.forEach((entry, i) => {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'number') {
        throw new Error(`${file}: model.vocab[${i}] must be [string, number]`);
      }
    });
    if (config.byte_fallback === true) {
      throw new Error(`${file}: Unigram byte_fallback is not supported`);
    }
    if (typeof config.unk_id !== 'number' || !Number.isInteger(config.unk_id) || config.unk_id < 0 || config.unk_id >= config.vocab.length) {
      throw new Error(`${file}: model.unk_id must be an index into model.vocab`);
    }
    this.unkId = config.unk_id;
    this.lib = new Unigram({ type: 'Unigram', unk_id: config.unk_id, vocab: config.vocab }, '');
    // the fix: restore the vocabulary score of the <unk> piece (the penalty stays in lib.unk_score)
    this.lib.scores[this.unkId] = config.vocab[this.unkId]![1];
    this.pieces = config.vocab.map((v) => v[0]);
    // Rust builds this with HashMap::insert in vocab order, so a duplicated piece maps to its last id
    this.pieceToId = new Map(this.pieces.map((p, i) => [p, i]));
  }

  /** Token ids of one pre-token (word). */
  encodeWord(word: string): number[] {
    if (word.length === 0) return [];
    // `lib([word])` = Viterbi + fusing of consecutive unknown pieces into one string
    const pieces = this.lib([word]);
    return pieces.map((p) => this.pieceToId.get(p) ?? this.unkId);
  }

  tokenToId(piece: string): number | undefined {
    return this.pieceToId.get(piece);
  }
}
