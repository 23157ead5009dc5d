/**
 * Training a sparse head on a frozen encoder. The encoder's hidden states come from a
 * `HiddenSource` (computed once: in memory or from the on-disk cache), so a step costs only the
 * head: represent queries and documents, score them, InfoNCE + FLOPS (+ distillation), Adam.
 *
 * Determinism: the batch order and the hard negatives of epoch e are drawn from a generator seeded
 * by (seed, e), and heads start from the model's own weights, so a run is a function of its seed.
 * Resuming: after every epoch the head's variables, Adam's state (step count, both moments) and the
 * curve so far are written to `checkpointDir/epoch-NNNN/` (written under a temporary name, then
 * renamed); `resume` continues after the latest one and gives the same numbers as an unbroken run.
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openSafetensors, writeSafetensors } from '../weights/safetensors.js';
import type { TrainableHead } from './heads/head.js';
import { ensureGradients } from './gradients.js';
import { padHidden, type HiddenSource } from './hidden-source.js';
import { distillation, flops, infoNce, meanNonZeros, scoreMatrix } from './losses.js';
import { mulberry32 } from '../rng.js';

/** One training query: its relevant document and, optionally, documents known to be irrelevant. */
export interface TrainExample {
  readonly queryId: string;
  readonly positiveId: string;
  readonly negativeIds?: readonly string[];
}

/** Teacher scores for distillation: one score per candidate document of a query. */
export type TeacherScores = (queryId: string, docIds: readonly string[]) => number[];

export interface TrainOptions {
  readonly epochs: number;
  readonly batchSize?: number; // queries per step, default 16
  readonly learningRate?: number; // Adam, default 1e-3
  readonly seed?: number; // default 0
  readonly temperature?: number; // InfoNCE / distillation softmax temperature, default 1
  /** FLOPS regulariser weights for the query and the document representations (default 0). */
  readonly flopsQuery?: number;
  readonly flopsDocument?: number;
  /** Hard negatives drawn per query from its `negativeIds` each epoch (default 1). */
  readonly hardNegatives?: number;
  /** Distillation from teacher scores, with its weight in the loss. */
  readonly teacher?: { readonly scores: TeacherScores; readonly weight: number };
  /** Write a checkpoint here after every epoch. */
  readonly checkpointDir?: string;
  /** Continue from the latest checkpoint in `checkpointDir`. */
  readonly resume?: boolean;
  /** Stop after this many epochs of this call (the run's epoch count stays `epochs`): for tests of resume. */
  readonly stopAfterEpochs?: number;
  readonly onStep?: (s: StepStats) => void;
  readonly onEpoch?: (e: EpochStats) => void;
}

export interface StepStats {
  readonly epoch: number; // 1-based
  readonly step: number; // 1-based within the epoch
  readonly steps: number; // per epoch
  readonly loss: number;
  /** Mean non-zero weights per query and per document in this step. */
  readonly nnzQuery: number;
  readonly nnzDocument: number;
}

export interface EpochStats {
  readonly epoch: number;
  /** Mean step loss over the epoch. */
  readonly loss: number;
  readonly nnzQuery: number;
  readonly nnzDocument: number;
}

export interface TrainResult {
  /** Every epoch's stats, the resumed ones included. */
  readonly curve: EpochStats[];
  /** The epoch the run resumed after (0: a fresh start). */
  readonly resumedAfter: number;
}

/** The lab's seeded generator (mulberry32, src/rng.ts). */
export const rng = mulberry32;

function shuffled<T>(xs: readonly T[], rand: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

function checkOptions(o: TrainOptions): Required<Omit<TrainOptions, 'teacher' | 'checkpointDir' | 'onStep' | 'onEpoch' | 'stopAfterEpochs'>> {
  const int = (v: number, name: string, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  const pos = (v: number, name: string, zeroOk: boolean) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!zeroOk && v === 0)) throw new RangeError(`${name} must be a finite number ${zeroOk ? '>= 0' : '> 0'}, got ${JSON.stringify(v)}`);
    return v;
  };
  return {
    epochs: int(o.epochs, 'epochs', 1),
    batchSize: int(o.batchSize ?? 16, 'batchSize', 1),
    learningRate: pos(o.learningRate ?? 1e-3, 'learningRate', false),
    seed: int(o.seed ?? 0, 'seed', 0),
    temperature: pos(o.temperature ?? 1, 'temperature', false),
    flopsQuery: pos(o.flopsQuery ?? 0, 'flopsQuery', true),
    flopsDocument: pos(o.flopsDocument ?? 0, 'flopsDocument', true),
    hardNegatives: int(o.hardNegatives ?? 1, 'hardNegatives', 0),
    resume: o.resume ?? false,
  };
}

/** Trains `head` in place on `examples`; returns the loss curve. */
export async function trainHead(
  head: TrainableHead, examples: readonly TrainExample[], source: HiddenSource, options: TrainOptions,
): Promise<TrainResult> {
  const o = checkOptions(options);
  await ensureGradients();
  if (examples.length === 0) throw new RangeError('no training examples');
  if (o.resume && !options.checkpointDir) throw new Error('resume needs a checkpointDir');
  if (options.teacher && !(options.teacher.weight >= 0)) throw new RangeError(`teacher weight must be >= 0, got ${options.teacher.weight}`);
  const optimizer = tf.train.adam(o.learningRate);
  const curve: EpochStats[] = [];
  let resumedAfter = 0;
  try {
    if (o.resume) {
      const ck = await loadCheckpoint(options.checkpointDir!, head, optimizer);
      if (ck) {
        resumedAfter = ck.epoch;
        curve.push(...ck.curve);
      }
    }
    let ran = 0;
    for (let epoch = resumedAfter + 1; epoch <= o.epochs; epoch++) {
      if (options.stopAfterEpochs !== undefined && ran >= options.stopAfterEpochs) break;
      const rand = rng((o.seed * 0x9e3779b1 + epoch) >>> 0);
      const order = shuffled(examples, rand);
      const steps = Math.ceil(order.length / o.batchSize);
      let lossSum = 0, nq = 0, nd = 0;
      for (let s = 0; s < steps; s++) {
        const batch = order.slice(s * o.batchSize, (s + 1) * o.batchSize);
        const st = await step(head, batch, source, optimizer, o, options.teacher, rand);
        lossSum += st.loss; nq += st.nnzQuery; nd += st.nnzDocument;
        options.onStep?.({ epoch, step: s + 1, steps, ...st });
      }
      const stats: EpochStats = { epoch, loss: lossSum / steps, nnzQuery: nq / steps, nnzDocument: nd / steps };
      curve.push(stats);
      options.onEpoch?.(stats);
      if (options.checkpointDir) await saveCheckpoint(options.checkpointDir, head, optimizer, epoch, curve);
      ran++;
    }
  } finally {
    optimizer.dispose();
  }
  return { curve, resumedAfter };
}

/** One optimizer step on a batch of examples. */
async function step(
  head: TrainableHead, batch: readonly TrainExample[], source: HiddenSource, optimizer: tf.Optimizer,
  o: ReturnType<typeof checkOptions>, teacher: TrainOptions['teacher'], rand: () => number,
): Promise<{ loss: number; nnzQuery: number; nnzDocument: number }> {
  // Documents of the step: every query's positive (in-batch negatives for the others), then hard negatives.
  const docIds: string[] = [];
  const col = new Map<string, number>();
  const addDoc = (id: string) => { if (!col.has(id)) { col.set(id, docIds.length); docIds.push(id); } };
  for (const e of batch) addDoc(e.positiveId);
  for (const e of batch) for (const n of shuffled(e.negativeIds ?? [], rand).slice(0, o.hardNegatives)) addDoc(n);
  const positives = batch.map((e) => col.get(e.positiveId)!);

  const H = source.hiddenSize;
  const q = padHidden(await Promise.all(batch.map((e) => source.get(e.queryId))), H);
  const d = padHidden(await Promise.all(docIds.map((id) => source.get(id))), H);
  const columns = head.columns([...q.inputIds, ...d.inputIds]);
  const teacherScores = teacher && teacher.weight > 0
    ? tf.tensor2d(batch.map((e) => { const s = teacher.scores(e.queryId, docIds); if (s.length !== docIds.length) throw new Error(`teacher gave ${s.length} scores for ${docIds.length} documents`); return s; }))
    : undefined;
  let nnzQuery = 0, nnzDocument = 0;
  try {
    const loss = optimizer.minimize(() => {
      const qRep = head.represent(q.hidden, q.inputIds, columns); // [Bq, C]
      const dRep = head.represent(d.hidden, d.inputIds, columns); // [Nd, C]
      nnzQuery = meanNonZeros(qRep);
      nnzDocument = meanNonZeros(dRep);
      const scores = scoreMatrix(qRep, dRep); // [Bq, Nd]
      let l = infoNce(scores, positives, o.temperature);
      if (o.flopsQuery > 0) l = tf.add(l, tf.mul(flops(qRep), o.flopsQuery));
      if (o.flopsDocument > 0) l = tf.add(l, tf.mul(flops(dRep), o.flopsDocument));
      if (teacherScores) l = tf.add(l, tf.mul(distillation(scores, teacherScores, o.temperature), teacher!.weight));
      return l as tf.Scalar;
    }, true, head.trainable as tf.Variable[])!;
    const value = (await loss.data())[0]!;
    loss.dispose();
    if (!Number.isFinite(value)) throw new Error(`training diverged: loss is ${value} (lower the learning rate)`);
    return { loss: value, nnzQuery, nnzDocument };
  } finally {
    tf.dispose([q.hidden, d.hidden, ...(teacherScores ? [teacherScores] : [])]);
  }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints: checkpointDir/epoch-NNNN/{head.safetensors, optimizer.safetensors, state.json}

const EPOCH_DIR = /^epoch-(\d{4,})$/;

/** tfjs's Adam keeps β1^t and β2^t in variables it does not export (nor save in getWeights). */
function adamPowers(o: tf.Optimizer): { accBeta1: tf.Variable; accBeta2: tf.Variable } | null {
  const a = o as unknown as { accBeta1?: unknown; accBeta2?: unknown };
  return a.accBeta1 instanceof tf.Variable && a.accBeta2 instanceof tf.Variable ? { accBeta1: a.accBeta1, accBeta2: a.accBeta2 } : null;
}

async function tensorBytes(t: tf.Tensor): Promise<Uint8Array> {
  const data = await t.data();
  return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

async function saveCheckpoint(dir: string, head: TrainableHead, optimizer: tf.Optimizer, epoch: number, curve: EpochStats[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const name = `epoch-${String(epoch).padStart(4, '0')}`;
  const tmp = join(dir, `.${name}.tmp-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  const vars = head.trainable;
  await writeSafetensors(join(tmp, 'head.safetensors'), vars.map((v, i) => ({
    name: `var.${i}`, dtype: 'F32' as const, shape: v.shape, bytes: () => tensorBytes(v),
  })));
  const opt = await optimizer.getWeights(); // [iter, first moments…, second moments…], in variable order
  await writeSafetensors(join(tmp, 'optimizer.safetensors'), opt.map((w, i) => ({
    // The step count (int32) is stored as a float: exact below 2^24 steps.
    name: `state.${String(i).padStart(4, '0')}`, dtype: 'F32' as const, shape: w.tensor.shape,
    bytes: async () => (w.tensor.dtype === 'float32' ? tensorBytes(w.tensor) : new Uint8Array(Float32Array.from(await w.tensor.data()).buffer)),
  })));
  tf.dispose(opt[0]!.tensor); // the iteration count is made fresh by getWeights
  const acc = adamPowers(optimizer);
  if (acc) {
    // Adam's running β1^t, β2^t: setWeights recomputes them with pow, which rounds differently from
    // the running products; saving them makes a resumed run equal an unbroken one bit for bit.
    await writeSafetensors(join(tmp, 'adam-powers.safetensors'), [
      { name: 'beta1_power', dtype: 'F32', shape: [], bytes: () => tensorBytes(acc.accBeta1) },
      { name: 'beta2_power', dtype: 'F32', shape: [], bytes: () => tensorBytes(acc.accBeta2) },
    ]);
  }
  await writeFile(join(tmp, 'state.json'), `${JSON.stringify({ epoch, head: head.config, curve }, null, 2)}\n`);
  const final = join(dir, name);
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  for (const old of await readdir(dir)) { // keep the latest only
    if (EPOCH_DIR.test(old) && old !== name) await rm(join(dir, old), { recursive: true, force: true });
  }
}

/** Restores the latest checkpoint into `head` and `optimizer`; null when there is none. */
async function loadCheckpoint(dir: string, head: TrainableHead, optimizer: tf.Optimizer): Promise<{ epoch: number; curve: EpochStats[] } | null> {
  if (!existsSync(dir)) return null;
  const latest = (await readdir(dir)).filter((n) => EPOCH_DIR.test(n)).sort().pop();
  if (!latest) return null;
  const at = join(dir, latest);
  const state = JSON.parse(await readFile(join(at, 'state.json'), 'utf8')) as { epoch: number; head: { head: string }; curve: EpochStats[] };
  if (state.head.head !== head.config.head) throw new Error(`${at}: checkpoint is of head '${state.head.head}', not '${head.config.head}'`);
  const hf = await openSafetensors(join(at, 'head.safetensors'));
  try {
    for (const [i, v] of head.trainable.entries()) {
      const t = await hf.readFloat32(`var.${i}`);
      if (!tf.util.arraysEqual([...t.shape], v.shape)) throw new Error(`${at}/head.safetensors: 'var.${i}' has shape [${t.shape}], the head needs [${v.shape}]`);
      tf.tidy(() => v.assign(tf.tensor(t.data, [...v.shape], 'float32')));
    }
  } finally {
    await hf.close();
  }
  const of = await openSafetensors(join(at, 'optimizer.safetensors'));
  try {
    const names = [...of.keys()].sort();
    const weights = await Promise.all(names.map(async (n, i) => {
      const t = await of.readFloat32(n);
      return { name: n, tensor: i === 0 ? tf.scalar(Math.round(t.data[0]!), 'int32') : tf.tensor(t.data, [...t.shape], 'float32') };
    }));
    await optimizer.setWeights(weights); // setWeights copies the moments into variables
    tf.dispose(weights.map((w) => w.tensor));
  } finally {
    await of.close();
  }
  const acc = adamPowers(optimizer);
  if (acc && existsSync(join(at, 'adam-powers.safetensors'))) {
    const pf = await openSafetensors(join(at, 'adam-powers.safetensors'));
    try {
      const b1 = (await pf.readFloat32('beta1_power')).data[0]!;
      const b2 = (await pf.readFloat32('beta2_power')).data[0]!;
      tf.tidy(() => { acc.accBeta1.assign(tf.scalar(b1)); acc.accBeta2.assign(tf.scalar(b2)); });
    } finally {
      await pf.close();
    }
  }
  return { epoch: state.epoch, curve: state.curve };
}
