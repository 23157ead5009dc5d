/**
 * Saving and loading trained heads. A head folder holds `head.json` (the `HeadConfig`: head name,
 * layer, top-k, the model sizes it was made for) and its tensors:
 *
 *   m3, m3-log1p   sparse_linear.safetensors  weight [1, H], bias [1]   (float32)
 *                  sparse_linear.pt           the same, in torch.save's zip format
 *   splade         splade.safetensors         transform.dense.weight/bias, transform.LayerNorm.weight/bias, decoder.bias
 *
 * The m3-shaped files are exactly what a BGE-M3 snapshot holds for its sparse head (a snapshot reads
 * them as `sparse_linear.weight` / `sparse_linear.bias`): copying either into a snapshot folder
 * (and removing the other one there, since `.safetensors` wins over `.pt`) makes `BgeM3.load` use the
 * trained head, and FlagEmbedding loads `sparse_linear.pt` with `torch.load`. `BgeM3.load` applies
 * relu, so only an `m3` head reproduces there as trained; `m3-log1p`'s log1p is applied by the lab.
 *
 * The folder is written under a temporary name beside the target and renamed when complete; an
 * existing folder is replaced only with `force`, and only when it is a head folder this module
 * wrote (a valid `head.json` and none but the files above and `training.json`): anything else is
 * refused untouched. The replacement is a swap (old folder renamed aside, new one renamed in, old
 * one removed), so the target is never half-written.
 *
 * Values are checked both ways: a head with a non-finite or absurdly large weight
 * (`MAX_HEAD_WEIGHT`) is neither saved nor loaded, naming the file and the tensor.
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, lstatSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFolderAtomic } from '../atomic-write.js';
import type { BgeM3 } from '../m3.js';
import { partFiles } from '../weights/checkpoint-files.js';
import { headValuesFault, HeadWeightsError } from '../weights/finite.js';
import { openSafetensors, writeSafetensors } from '../weights/safetensors.js';
import { writeStateDict } from '../weights/torch-writer.js';
import type { HeadConfig, TrainableHead } from './heads/head.js';
import { TRAINABLE_HEAD_NAMES } from './heads/registry.js';
import { LinearTokenHead } from './heads/linear-token.js';
import { SPLADE_TENSORS, SpladeHead } from './heads/splade.js';

export const HEAD_CONFIG_FILE = 'head.json';
/** The m3 heads' files: the snapshot's own sparse head files, so a folder's file can replace a snapshot's. */
const SPARSE_FILES = partFiles('sparse_linear');
/** The heads a folder can hold (`head.json`'s "head"): the trainable ones. */
const HEAD_KINDS: readonly unknown[] = TRAINABLE_HEAD_NAMES;
/** The splade head's file. */
const SPLADE_FILE = 'splade.safetensors';
/** The extra files `saveHead` may be given (`sparse train`'s report). */
const EXTRA_FILES: readonly string[] = ['training.json'];
/** Every file a head folder may hold. */
export const HEAD_FOLDER_FILES: readonly string[] = [HEAD_CONFIG_FILE, SPARSE_FILES.safetensors, SPARSE_FILES.torch, SPLADE_FILE, ...EXTRA_FILES];

/**
 * Why `dir` may not be replaced by a new head (null: it may): it must be a folder holding a
 * `head.json` of ours and no file `saveHead` does not write. Checked before any work by
 * `sparse train --force`, and again by `saveHead` just before the swap.
 */
export async function notReplaceable(dir: string): Promise<string | null> {
  const st = lstatSync(dir, { throwIfNoEntry: false });
  if (!st) return null;
  if (!st.isDirectory()) return `${dir} is not a head folder (it is ${st.isSymbolicLink() ? 'a symbolic link' : 'a file'})`;
  const names = await readdir(dir);
  const foreign = names.filter((n) => !HEAD_FOLDER_FILES.includes(n));
  if (!names.includes(HEAD_CONFIG_FILE)) return `${dir} is not a head folder written by bge-m3 sparse train (no ${HEAD_CONFIG_FILE}${names.length > 0 ? `; it holds ${listed(names)}` : ''})`;
  if (foreign.length > 0) return `${dir} holds files a head folder does not (${listed(foreign)})`;
  let cfg: unknown;
  try {
    cfg = JSON.parse(await readFile(join(dir, HEAD_CONFIG_FILE), 'utf8'));
  } catch {
    cfg = undefined;
  }
  const c = cfg as Partial<HeadConfig> | undefined;
  if (!c || typeof c !== 'object' || !HEAD_KINDS.includes(c.head) || typeof c.hiddenSize !== 'number' || typeof c.vocabSize !== 'number') {
    return `${join(dir, HEAD_CONFIG_FILE)} is not a head description written by bge-m3 sparse train`;
  }
  return null;
}

const listed = (names: readonly string[]): string => `${names.slice(0, 5).map((n) => JSON.stringify(n)).join(', ')}${names.length > 5 ? `, … ${names.length} entries` : ''}`;

async function f32(t: tf.Tensor): Promise<Float32Array> {
  return Float32Array.from(await t.data());
}

/** Writes `head` to the folder `dir` (see the layout above). */
export async function saveHead(
  head: TrainableHead, dir: string, opts: { force?: boolean; /** More small files to put in the folder (name -> text). */ files?: Record<string, string> } = {},
): Promise<void> {
  if (existsSync(dir) && !opts.force) throw new Error(`${dir} exists; pass force (--force) to replace it`);
  for (const name of Object.keys(opts.files ?? {})) {
    if (!EXTRA_FILES.includes(name)) throw new Error(`saveHead: bad extra file name ${JSON.stringify(name)} (allowed: ${EXTRA_FILES.join(', ')})`);
  }
  const named = head.namedTensors();
  const host = new Map<string, Float32Array>();
  for (const [name, t] of Object.entries(named)) host.set(name, await f32(t));
  for (const [name, data] of host) {
    const fault = headValuesFault(name, data);
    if (fault) throw new HeadWeightsError(`${dir}: not written`, [fault]);
  }
  const refused = await notReplaceable(dir);
  if (refused) throw new Error(`${refused}: refusing to replace it (nothing was deleted)`);
  // The old head (checked just now) is swapped for the new one; removed on a failure or a signal; errors name the folder.
  await writeFolderAtomic(dir, async (tmp) => {
    if (head.config.head === 'splade') {
      await writeSafetensors(join(tmp, SPLADE_FILE), SPLADE_TENSORS.map((name) => ({
        name, dtype: 'F32' as const, shape: named[name]!.shape, bytes: () => new Uint8Array(host.get(name)!.buffer),
      })), { metadata: { format: 'pt' } });
    } else {
      const weight = { name: 'weight', shape: named['sparse_linear.weight']!.shape, data: host.get('sparse_linear.weight')! };
      const bias = { name: 'bias', shape: named['sparse_linear.bias']!.shape, data: host.get('sparse_linear.bias')! };
      await writeSafetensors(join(tmp, SPARSE_FILES.safetensors), [weight, bias].map((t) => ({
        name: t.name, dtype: 'F32' as const, shape: t.shape, bytes: () => new Uint8Array(t.data.buffer),
      })), { metadata: { format: 'pt' } });
      await writeStateDict(join(tmp, SPARSE_FILES.torch), [weight, bias], { archive: SPARSE_FILES.archive });
    }
    await writeFile(join(tmp, HEAD_CONFIG_FILE), `${JSON.stringify(head.config, null, 2)}\n`);
    for (const [name, text] of Object.entries(opts.files ?? {})) await writeFile(join(tmp, name), text);
  });
}

/** Reads `head.json` and checks it against `model`; errors name the file and the field. */
export async function readHeadConfig(dir: string, model: BgeM3): Promise<HeadConfig> {
  const file = join(dir, HEAD_CONFIG_FILE);
  if (!existsSync(file)) throw new Error(`${file}: no such file (a saved head folder has ${HEAD_CONFIG_FILE})`);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: malformed JSON (${(e as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${file}: expected a JSON object`);
  const c = raw as Record<string, unknown>;
  if (!HEAD_KINDS.includes(c.head)) throw new Error(`${file}: "head" must be one of ${HEAD_KINDS.join(', ')}, got ${JSON.stringify(c.head)}`);
  const L = model.config.num_hidden_layers;
  if (c.layer !== undefined && (!Number.isInteger(c.layer) || (c.layer as number) < 0 || (c.layer as number) > L)) {
    throw new Error(`${file}: "layer" must be an integer in [0, ${L}], got ${JSON.stringify(c.layer)}`);
  }
  if (c.topK !== undefined && (!Number.isInteger(c.topK) || (c.topK as number) < 1)) throw new Error(`${file}: "topK" must be an integer >= 1, got ${JSON.stringify(c.topK)}`);
  if (c.hiddenSize !== model.config.hidden_size) throw new Error(`${file}: "hiddenSize" is ${JSON.stringify(c.hiddenSize)}, the model's hidden size is ${model.config.hidden_size}`);
  if (c.vocabSize !== model.config.vocab_size) throw new Error(`${file}: "vocabSize" is ${JSON.stringify(c.vocabSize)}, the model's vocabulary has ${model.config.vocab_size} ids`);
  return c as unknown as HeadConfig;
}

/** Loads a head saved by `saveHead` for `model` (the same hidden size and vocabulary). */
export async function loadHead(dir: string, model: BgeM3): Promise<TrainableHead> {
  const cfg = await readHeadConfig(dir, model);
  const file = join(dir, cfg.head === 'splade' ? SPLADE_FILE : SPARSE_FILES.safetensors);
  if (!existsSync(file)) throw new Error(`${file}: no such file`);
  const st = await openSafetensors(file);
  const read = async (name: string) => {
    if (!st.keys().includes(name)) throw new Error(`${file}: missing tensor '${name}'`);
    const t = await st.readFloat32(name);
    // A NaN here would be hidden by the head's ReLU; a huge weight would give meaningless scores.
    const fault = headValuesFault(name, t.data);
    if (fault) throw new HeadWeightsError(file, [fault]);
    return tf.tensor(t.data, [...t.shape], 'float32');
  };
  const made: tf.Tensor[] = [];
  try {
    if (cfg.head === 'splade') {
      for (const n of SPLADE_TENSORS) made.push(await read(n));
      const [dense_weight, dense_bias, ln_weight, ln_bias, decoder_bias] = made as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      return new SpladeHead(model, cfg.layer, cfg.topK, { dense_weight, dense_bias, ln_weight, ln_bias, decoder_bias });
    }
    made.push(await read('weight'), await read('bias'));
    return new LinearTokenHead(cfg.head, model, cfg.head === 'm3' ? 'relu' : 'log1p', cfg.layer, { weight: made[0]!, bias: made[1]! });
  } catch (e) {
    throw e instanceof Error && !e.message.startsWith(file) ? new Error(`${file}: ${e.message}`) : e;
  } finally {
    tf.dispose(made); // the heads copy them into variables
    await st.close();
  }
}
