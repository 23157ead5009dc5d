/** Sparse heads by name, for the API and the `bge-m3 sparse` commands. */
import type { BgeM3 } from '../../m3.js';
import type { SparseHead } from './head.js';
import { M3Head } from './m3.js';

export interface HeadOptions {
  /** hidden_states index the head reads (0 = embeddings … L = last layer, the default). */
  readonly layer?: number;
}

type Factory = (model: BgeM3, opts: HeadOptions) => SparseHead;

const FACTORIES: Record<string, Factory> = {
  m3: (model, opts) => new M3Head(model, opts.layer),
};

export const HEAD_NAMES: readonly string[] = Object.keys(FACTORIES);

/** The head called `name`; an unknown name lists the known ones. */
export function createHead(name: string, model: BgeM3, opts: HeadOptions = {}): SparseHead {
  const make = FACTORIES[name];
  if (!make) throw new Error(`unknown sparse head '${name}'; known heads: ${HEAD_NAMES.join(', ')}`);
  return make(model, opts);
}
