/**
 * Typed access to the parts of `@huggingface/tokenizers` this project uses.
 *
 * The package's root `types/index.d.ts` re-exports `./models`, `./normalizers` … without file extensions,
 * which TypeScript cannot resolve under `moduleResolution: NodeNext`, so only `Tokenizer` and `AddedToken`
 * are visible to the type checker although the runtime module exports every component. We declare the
 * members we rely on here (checked against the package's own `types/core/...d.ts`).
 */
import * as hf from '@huggingface/tokenizers';

export interface LibUnigram {
  /** Viterbi segmentation of each string, concatenated, with unknown pieces fused. */
  (tokens: string[]): string[];
  scores: number[];
  unk_score: number;
  tokens_to_ids: Map<string, number>;
}

interface LibExports {
  Unigram: new (config: { type: 'Unigram'; unk_id: number; vocab: Array<[string, number]> }, eosToken: string) => LibUnigram;
}

const lib = hf as unknown as LibExports;
if (typeof lib.Unigram !== 'function') {
  throw new Error('@huggingface/tokenizers does not export Unigram (unsupported version)');
}

export const Unigram = lib.Unigram;
