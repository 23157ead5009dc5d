/**
 * Which weights a notebook runs on, said plainly in its first output.
 *
 * Order: BGE_M3_NOTEBOOK_WEIGHTS (a snapshot folder, or `fixture`), then `weights/bge-m3` when a
 * snapshot is there, then the bundled random-weight fixture. `npm run notebooks:check` sets `fixture`,
 * because the committed outputs were made with it.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tslab from 'tslab';
import { BgeM3 } from '../../dist/index.js';

/** The repository root: Jupyter starts the kernel in notebooks/. */
export const ROOT = path.resolve(process.cwd(), '..');
if (!fs.existsSync(path.join(ROOT, 'notebooks', 'lib', 'setup.ts'))) {
  throw new Error(`run the notebooks from the notebooks/ folder (the kernel started in ${process.cwd()})`);
}

export type Fixture = 'tiny-m3' | 'small-m3' | 'sharp-m3';

export interface Weights {
  /** Snapshot folder, relative to the repository root. */
  dir: string;
  /** True for the bundled random-weight fixtures. */
  random: boolean;
}

export function chooseWeights(fixture: Fixture): Weights {
  const asked = process.env['BGE_M3_NOTEBOOK_WEIGHTS'];
  const fixtureDir = { dir: path.join('test', 'fixtures', fixture), random: true };
  if (asked === 'fixture') return fixtureDir;
  if (asked) {
    if (!fs.existsSync(path.resolve(ROOT, asked, 'config.json'))) throw new Error(`BGE_M3_NOTEBOOK_WEIGHTS=${asked}: no config.json there`);
    const fixtures = path.join(ROOT, 'test', 'fixtures') + path.sep;
    return { dir: asked, random: path.resolve(ROOT, asked).startsWith(fixtures) };
  }
  // TODO: the Hugging Face cache, once BgeM3.load accepts a repo id.
  if (fs.existsSync(path.join(ROOT, 'weights', 'bge-m3', 'config.json'))) return { dir: path.join('weights', 'bge-m3'), random: false };
  return fixtureDir;
}

/** Loads the chosen weights and prints which they are (the notebook's first output). */
export async function loadModel(fixture: Fixture = 'sharp-m3'): Promise<{ m3: BgeM3; weights: Weights }> {
  const weights = chooseWeights(fixture);
  const m3 = await BgeM3.load(path.resolve(ROOT, weights.dir));
  const c = m3.config;
  const shape = `${c.num_hidden_layers} layers, hidden ${c.hidden_size}, ${c.num_attention_heads} heads, vocabulary ${c.vocab_size}`;
  tslab.display.markdown(weights.random
    ? `**Weights: \`${weights.dir}\`**, the bundled random-weight checkpoint shaped like BGE-M3 (${shape}). ` +
      '**Random weights show the mechanics, not meaning:** every number below is computed exactly as BGE-M3 ' +
      'computes it, but which token weighs most or which passage wins is chance. Put a `BAAI/bge-m3` snapshot ' +
      'in `weights/bge-m3` (`npx bge-m3 download`) and re-run to see the real model.'
    : `**Weights: \`${weights.dir}\`** (${shape}): trained weights, so the numbers mean something. ` +
      'The committed outputs of this notebook were made with the random fixture, so yours will differ.');
  return { m3, weights };
}
