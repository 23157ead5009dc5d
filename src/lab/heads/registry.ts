/** Sparse heads by name, for the API and the `bge-m3 sparse` commands. */
import type { BgeM3 } from '../../m3.js';
import { Bm25Head, specialIds } from './bm25.js';
import type { SparseHead } from './head.js';
import { IdfHead } from './idf.js';
import { M3Head } from './m3.js';

export interface HeadOptions {
  /** hidden_states index the head reads (0 = embeddings … L = last layer, the default). */
  readonly layer?: number;
  /** bm25: term-frequency saturation (default 0.9). */
  readonly k1?: number;
  /** bm25: length normalisation (default 0.4). */
  readonly b?: number;
}

type Factory = (model: BgeM3, opts: HeadOptions) => SparseHead;

const FACTORIES: Record<string, Factory> = {
  m3: (model, opts) => new M3Head(model, opts.layer),
  // Corpus-statistics heads: call `fit(corpus token ids)` before weighing documents.
  bm25: (model, opts) => new Bm25Head(specialIds(model), opts),
  idf: (model) => new IdfHead(specialIds(model)),
};

export const HEAD_NAMES: readonly string[] = Object.keys(FACTORIES);

/** The head called `name`; an unknown name lists the known ones. */
export function createHead(name: string, model: BgeM3, opts: HeadOptions = {}): SparseHead {
  const make = Object.hasOwn(FACTORIES, name) ? FACTORIES[name] : undefined;
  if (!make) throw new Error(`unknown sparse head '${name}'; known heads: ${HEAD_NAMES.join(', ')}`);
  return make(model, opts);
}
