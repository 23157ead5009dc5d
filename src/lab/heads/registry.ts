/** Sparse heads by name, for the API and the `bge-m3 sparse` commands. */
import type { BgeM3 } from '../../m3.js';
import { unusedTokenIds } from '../../heads/sparse.js';
import { Bm25Head } from './bm25.js';
import type { SparseHead, TrainableHead } from './head.js';
import { IdfHead } from './idf.js';
import { LinearTokenHead } from './linear-token.js';
import { M3Head } from './m3.js';
import { m3Log1pHead } from './m3-log1p.js';
import { SpladeHead } from './splade.js';

export interface HeadOptions {
  /** hidden_states index the head reads (0 = embeddings … L = last layer, the default). */
  readonly layer?: number;
  /** bm25: term-frequency saturation (default 0.9). */
  readonly k1?: number;
  /** bm25: length normalisation (default 0.4). */
  readonly b?: number;
  /** splade: weights kept per text (default: all). */
  readonly topK?: number;
}

type Factory = (model: BgeM3, opts: HeadOptions) => SparseHead;

/** Heads with weights a training run can update, each starting from the model's own weights. */
const TRAINABLE: Record<string, (model: BgeM3, opts: HeadOptions) => TrainableHead> = {
  // The m3 head as variables (a copy of sparse_linear): the same math as `m3`, trainable.
  m3: (model, opts) => new LinearTokenHead('m3', model, 'relu', opts.layer),
  'm3-log1p': (model, opts) => m3Log1pHead(model, opts.layer),
  splade: (model, opts) => new SpladeHead(model, opts.layer, opts.topK),
};

const FACTORIES: Record<string, Factory> = {
  m3: (model, opts) => new M3Head(model, opts.layer),
  'm3-log1p': TRAINABLE['m3-log1p']!,
  splade: TRAINABLE.splade!,
  // Corpus-statistics heads: call `fit(corpus token ids)` before weighing documents.
  bm25: (model, opts) => new Bm25Head(unusedTokenIds(model.tokenizer), opts),
  idf: (model) => new IdfHead(unusedTokenIds(model.tokenizer)),
};

export const HEAD_NAMES: readonly string[] = Object.keys(FACTORIES);
export const TRAINABLE_HEAD_NAMES: readonly string[] = Object.keys(TRAINABLE);

/** The head called `name`; an unknown name lists the known ones. */
export function createHead(name: string, model: BgeM3, opts: HeadOptions = {}): SparseHead {
  const make = Object.hasOwn(FACTORIES, name) ? FACTORIES[name] : undefined;
  if (!make) throw new Error(`unknown sparse head '${name}'; known heads: ${HEAD_NAMES.join(', ')}`);
  return make(model, opts);
}

/** The trainable head called `name`, at its starting point. */
export function createTrainableHead(name: string, model: BgeM3, opts: HeadOptions = {}): TrainableHead {
  const make = Object.hasOwn(TRAINABLE, name) ? TRAINABLE[name] : undefined;
  if (!make) throw new Error(`sparse head '${name}' cannot be trained; trainable heads: ${TRAINABLE_HEAD_NAMES.join(', ')}`);
  return make(model, opts);
}
