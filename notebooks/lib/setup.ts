/**
 * Which weights a notebook runs on, said plainly in its first output.
 *
 * Order: BGE_M3_NOTEBOOK_WEIGHTS (a snapshot folder, `BAAI/bge-m3`-style repo id, or `fixture`), then
 * `weights/bge-m3` when a snapshot is there, then `BAAI/bge-m3` in the Hugging Face cache, then the
 * bundled random-weight fixture. `npm run notebooks:check` sets `fixture`, because the committed
 * outputs were made with it.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tslab from 'tslab';
import { BgeM3, ModelNotFoundError, resolveModel } from '../../dist/index.js';

/** The repository root: Jupyter starts the kernel in notebooks/. */
export const ROOT = path.resolve(process.cwd(), '..');
if (!fs.existsSync(path.join(ROOT, 'notebooks', 'lib', 'setup.ts'))) {
  throw new Error(`run the notebooks from the notebooks/ folder (the kernel started in ${process.cwd()})`);
}

/** The real model's repo id, looked up in the Hugging Face cache when weights/bge-m3 is empty. */
export const HUB_REPO = 'BAAI/bge-m3';

export type Fixture = 'tiny-m3' | 'small-m3' | 'sharp-m3';

export interface Weights {
  /** Snapshot folder, relative to the repository root (absolute for a Hugging Face cache snapshot). */
  dir: string;
  /** The repo id, when the snapshot came from the Hugging Face cache. */
  repo?: string;
  /** True for the bundled random-weight fixtures. */
  random: boolean;
}

export function chooseWeights(fixture: Fixture): Weights {
  const asked = process.env['BGE_M3_NOTEBOOK_WEIGHTS'];
  const fixtureDir = { dir: path.join('test', 'fixtures', fixture), random: true };
  if (asked === 'fixture') return fixtureDir;
  if (asked) {
    if (!fs.existsSync(path.resolve(ROOT, asked)) && !path.isAbsolute(asked)) {
      // Not a folder: a repo id such as BAAI/bge-m3, looked up in the Hugging Face cache (throws saying where it looked).
      const hub = resolveModel(asked);
      return { dir: hub.dir, repo: asked, random: false };
    }
    if (!fs.existsSync(path.resolve(ROOT, asked, 'config.json'))) throw new Error(`BGE_M3_NOTEBOOK_WEIGHTS=${asked}: no config.json there`);
    const fixtures = path.join(ROOT, 'test', 'fixtures') + path.sep;
    return { dir: asked, random: path.resolve(ROOT, asked).startsWith(fixtures) };
  }
  if (fs.existsSync(path.join(ROOT, 'weights', 'bge-m3', 'config.json'))) return { dir: path.join('weights', 'bge-m3'), random: false };
  try {
    return { dir: resolveModel(HUB_REPO).dir, repo: HUB_REPO, random: false };
  } catch (e) {
    if (!(e instanceof ModelNotFoundError)) throw e; // not in the cache: the fixture below
  }
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
      'in `weights/bge-m3` (`npx -p bge-m3-tfjs bge-m3 download`) and re-run to see the real model.'
    : `**Weights: \`${weights.repo ? `${weights.repo}\` from the Hugging Face cache, \`${weights.dir}` : weights.dir}\`** (${shape}): trained weights, so the numbers mean something. ` +
      'The committed outputs of this notebook were made with the random fixture, so yours will differ.');
  return { m3, weights };
}
