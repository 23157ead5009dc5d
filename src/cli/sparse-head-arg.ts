/** The `--head NAME|DIR` flag of the sparse lab's commands: a trainable head by name, or a saved head folder. */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HEAD_CONFIG_FILE, loadHead } from '../lab/head-io.js';
import type { TrainableHead } from '../lab/heads/head.js';
import { createTrainableHead, HEAD_NAMES, TRAINABLE_HEAD_NAMES, type HeadOptions } from '../lab/heads/registry.js';
import type { BgeM3 } from '../m3.js';
import { CliError } from './io.js';

/**
 * A neural head: `m3`, `m3-log1p`, `splade` (starting weights), or a folder written by `sparse train`.
 * A head name always means the built-in head (as in eval): a folder named like a head is given as a path
 * (`./m3`).
 */
export async function neuralHead(value: string, model: BgeM3, opts: HeadOptions = {}): Promise<TrainableHead> {
  if (TRAINABLE_HEAD_NAMES.includes(value)) return createTrainableHead(value, model, opts);
  if (HEAD_NAMES.includes(value)) throw new CliError(`--head ${value} reads token ids only; this command needs a head that reads hidden states (${TRAINABLE_HEAD_NAMES.join(', ')}) or a saved head folder (a folder named ${value}: write ./${value})`, true);
  if (existsSync(value) && statSync(value).isDirectory()) {
    if (!existsSync(join(value, HEAD_CONFIG_FILE))) throw new CliError(`--head ${value}: not a saved head folder (no ${HEAD_CONFIG_FILE})`, true);
    return loadHead(value, model);
  }
  throw new CliError(`--head must be one of ${TRAINABLE_HEAD_NAMES.join(', ')} or a saved head folder, got '${value}'`, true);
}
