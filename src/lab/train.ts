/**
 * Training a sparse head on a frozen encoder. The encoder's hidden states come from a
 * `HiddenSource` (computed once: in memory or from the on-disk cache), so a step costs only the
 * head: represent queries and documents, score them, InfoNCE + FLOPS (+ distillation), Adam.
 *
 * Determinism: the batch order and the hard negatives of epoch e are drawn from a generator seeded
 * by (seed, e), and heads start from the model's own weights, so a run is a function of its seed.
 * Resuming: after every epoch the head's variables, Adam's state (step count, both moments), the
 * curve so far and the run's settings (`RunSettings`) are written to `checkpointDir/epoch-NNNN/`
 * (written under a temporary name, then renamed); `resume` continues after the latest one and gives
 * the same numbers as an unbroken run. A checkpoint made with other settings, one whose epoch, step
 * count or curve do not agree, or one holding a non-finite value is refused, saying which.
 *
 * Divergence: after every step the head's weights are checked (no NaN/Infinity, nothing beyond
 * `MAX_HEAD_WEIGHT`), and at the end of every epoch, before its checkpoint is written, the last
 * batch's loss is computed again with the updated head. A failure throws `TrainingDivergedError`
 * naming the epoch, step and loss; nothing of that epoch is saved.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFolderAtomic } from '../atomic-write.js';
import { describeHeadFault, findHeadFaults, headValuesFault, type HeadTensorFault } from '../weights/finite.js';
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
  /**
   * What else defines the run and this module cannot see (the model, the texts, their truncation…),
   * as name -> value: stored in every checkpoint with the settings `trainHead` knows itself (see
   * `RunSettings`); `resume` refuses a checkpoint whose settings differ, naming them.
   */
  readonly settings?: Readonly<Record<string, string | number | boolean | null>>;
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

/**
 * Everything that changes a run's numbers, as stored in its checkpoints: the options above, the
 * head's kind and config, digests of its starting weights and of the training examples, and the
 * caller's `settings`. `epochs` is not one of them: epoch e is the same in a run of any length.
 */
export type RunSettings = Readonly<Record<string, string | number | boolean | null>>;

/** A step made the head's loss or weights non-finite (or absurdly large): nothing of its epoch is saved. */
export class TrainingDivergedError extends Error {
  constructor(
    readonly epoch: number, readonly step: number, readonly steps: number,
    /** The step's loss (computed before its update) and, when measured, the loss after it. */
    readonly loss: number, readonly lossAfter: number | undefined,
    /** The head tensor that went bad, when it was the weights. */
    readonly fault: HeadTensorFault | undefined,
    readonly learningRate: number,
  ) {
    super(`${TrainingDivergedError.what(epoch, step, steps, loss, lossAfter, fault)}. Nothing of epoch ${epoch} was saved; `
      + `try a lower learning rate (it is ${learningRate}) or a higher temperature`);
    this.name = 'TrainingDivergedError';
  }

  /** What happened, without advice: "training diverged at epoch 1, step 2 of 4: …". */
  static what(epoch: number, step: number, steps: number, loss: number, lossAfter: number | undefined, fault: HeadTensorFault | undefined): string {
    const at = `training diverged at epoch ${epoch}, step ${step} of ${steps}`;
    if (!Number.isFinite(loss)) return `${at}: the loss is ${loss}`;
    const after = fault ? `after the update the head's ${describeHeadFault(fault)}` : `after the update the loss is ${lossAfter}`;
    return `${at}: the loss was ${loss.toFixed(4)} before the update; ${after}`;
  }
}

/** A checkpoint that cannot be resumed: other settings, inconsistent or corrupt. */
export class CheckpointError extends Error {
  constructor(
    readonly checkpoint: string, detail: string,
    /** For a checkpoint made with other settings: each differing setting, its checkpoint value and the value now. */
    readonly differences: readonly { readonly name: string; readonly saved: unknown; readonly now: unknown }[] = [],
  ) {
    super(`${checkpoint}: ${detail}`);
    this.name = 'CheckpointError';
  }
}

/** Adam's step count is saved as a float32: exact below 2^24 steps. */
const MAX_STEPS = 2 ** 24;

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

function checkOptions(o: TrainOptions): Required<Omit<TrainOptions, 'teacher' | 'checkpointDir' | 'onStep' | 'onEpoch' | 'stopAfterEpochs' | 'settings'>> {
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
  const steps = Math.ceil(examples.length / o.batchSize);
  if (o.epochs * steps >= MAX_STEPS) throw new RangeError(`epochs × steps per epoch must stay below 2^24 (Adam's step count is saved as float32), got ${o.epochs} × ${steps}`);
  const settings = await runSettings(head, examples, o, options);
  const optimizer = tf.train.adam(o.learningRate);
  const curve: EpochStats[] = [];
  let resumedAfter = 0;
  try {
    if (o.resume) {
      const ck = await loadCheckpoint(options.checkpointDir!, head, optimizer, { settings, epochs: o.epochs, steps });
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
      let lossSum = 0, nq = 0, nd = 0;
      for (let s = 0; s < steps; s++) {
        const batch = order.slice(s * o.batchSize, (s + 1) * o.batchSize);
        const last = s === steps - 1; // the epoch's checkpoint follows: measure the loss after the update too
        const st = await step(head, batch, source, optimizer, o, options.teacher, rand, last);
        const diverged = (fault?: HeadTensorFault) => new TrainingDivergedError(epoch, s + 1, steps, st.loss, st.lossAfter, fault, o.learningRate);
        if (!Number.isFinite(st.loss)) throw diverged();
        const [fault] = await findHeadFaults(Object.entries(head.namedTensors()));
        if (fault) throw diverged(fault);
        if (last && !Number.isFinite(st.lossAfter)) throw diverged();
        lossSum += st.loss; nq += st.nnzQuery; nd += st.nnzDocument;
        options.onStep?.({ epoch, step: s + 1, steps, loss: st.loss, nnzQuery: st.nnzQuery, nnzDocument: st.nnzDocument });
      }
      const stats: EpochStats = { epoch, loss: lossSum / steps, nnzQuery: nq / steps, nnzDocument: nd / steps };
      curve.push(stats);
      options.onEpoch?.(stats);
      if (options.checkpointDir) await saveCheckpoint(options.checkpointDir, head, optimizer, epoch, curve, settings);
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
  o: ReturnType<typeof checkOptions>, teacher: TrainOptions['teacher'], rand: () => number, measureAfter: boolean,
): Promise<{ loss: number; lossAfter?: number; nnzQuery: number; nnzDocument: number }> {
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
  const lossOf = (record: boolean): tf.Scalar => {
    const qRep = head.represent(q.hidden, q.inputIds, columns); // [Bq, C]
    const dRep = head.represent(d.hidden, d.inputIds, columns); // [Nd, C]
    if (record) {
      nnzQuery = meanNonZeros(qRep);
      nnzDocument = meanNonZeros(dRep);
    }
    const scores = scoreMatrix(qRep, dRep); // [Bq, Nd]
    let l = infoNce(scores, positives, o.temperature);
    if (o.flopsQuery > 0) l = tf.add(l, tf.mul(flops(qRep), o.flopsQuery));
    if (o.flopsDocument > 0) l = tf.add(l, tf.mul(flops(dRep), o.flopsDocument));
    if (teacherScores) l = tf.add(l, tf.mul(distillation(scores, teacherScores, o.temperature), teacher!.weight));
    return l as tf.Scalar;
  };
  const read = async (t: tf.Scalar): Promise<number> => {
    const v = (await t.data())[0]!;
    t.dispose();
    return v;
  };
  try {
    const loss = await read(optimizer.minimize(() => lossOf(true), true, head.trainable as tf.Variable[])!);
    const lossAfter = measureAfter && Number.isFinite(loss) ? await read(tf.tidy(() => lossOf(false))) : undefined;
    return { loss, lossAfter, nnzQuery, nnzDocument };
  } finally {
    tf.dispose([q.hidden, d.hidden, ...(teacherScores ? [teacherScores] : [])]);
  }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints: checkpointDir/epoch-NNNN/{head.safetensors, optimizer.safetensors, adam-powers.safetensors, state.json}

const EPOCH_DIR = /^epoch-(\d{4,})$/;

function sha256(parts: Iterable<string | Uint8Array>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 32);
}

/** The settings a checkpoint of this run records (see `RunSettings`). */
async function runSettings(
  head: TrainableHead, examples: readonly TrainExample[], o: ReturnType<typeof checkOptions>, options: TrainOptions,
): Promise<RunSettings> {
  const start: Uint8Array[] = [];
  for (const v of head.trainable) start.push(await tensorBytes(v));
  const own: Record<string, string | number | boolean | null> = {
    head: JSON.stringify(head.config),
    startWeights: sha256(start),
    examples: sha256(examples.map((e) => `${JSON.stringify([e.queryId, e.positiveId, e.negativeIds ?? []])}\n`)),
    batchSize: o.batchSize, learningRate: o.learningRate, seed: o.seed, temperature: o.temperature,
    flopsQuery: o.flopsQuery, flopsDocument: o.flopsDocument, hardNegatives: o.hardNegatives,
    teacherWeight: options.teacher ? options.teacher.weight : null,
  };
  for (const k of Object.keys(options.settings ?? {})) if (k in own) throw new Error(`settings: '${k}' is one trainHead records itself`);
  return { ...own, ...options.settings };
}

/** tfjs's Adam keeps β1^t and β2^t in variables it does not export (nor save in getWeights). */
function adamPowers(o: tf.Optimizer): { accBeta1: tf.Variable; accBeta2: tf.Variable } | null {
  const a = o as unknown as { accBeta1?: unknown; accBeta2?: unknown };
  return a.accBeta1 instanceof tf.Variable && a.accBeta2 instanceof tf.Variable ? { accBeta1: a.accBeta1, accBeta2: a.accBeta2 } : null;
}

async function tensorBytes(t: tf.Tensor): Promise<Uint8Array> {
  const data = await t.data();
  return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

async function saveCheckpoint(dir: string, head: TrainableHead, optimizer: tf.Optimizer, epoch: number, curve: EpochStats[], settings: RunSettings): Promise<void> {
  await mkdir(dir, { recursive: true });
  const name = `epoch-${String(epoch).padStart(4, '0')}`;
  const final = join(dir, name);
  // removed on any failure (a full disk) or signal; errors name the checkpoint
  await writeFolderAtomic(final, async (tmp) => {
    const vars = head.trainable;
    await writeSafetensors(join(tmp, 'head.safetensors'), vars.map((v, i) => ({
      name: `var.${i}`, dtype: 'F32' as const, shape: v.shape, bytes: () => tensorBytes(v),
    })));
    const opt = await optimizer.getWeights(); // [iter, first moments…, second moments…], in variable order
    await writeSafetensors(join(tmp, 'optimizer.safetensors'), opt.map((w, i) => ({
      // The step count (int32) is stored as a float: exact below 2^24 steps (MAX_STEPS).
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
    await writeFile(join(tmp, 'state.json'), `${JSON.stringify({ epoch, head: head.config, settings, curve }, null, 2)}\n`);
  });
  for (const old of await readdir(dir)) { // keep the latest only
    if (EPOCH_DIR.test(old) && old !== name) await rm(join(dir, old), { recursive: true, force: true });
  }
}

/** The latest `epoch-NNNN` folder in `dir` (by number) and the epoch its name says; null when there is none. */
export async function latestCheckpoint(dir: string): Promise<{ path: string; epoch: number } | null> {
  if (!existsSync(dir)) return null;
  const epochs = (await readdir(dir)).map((n) => EPOCH_DIR.exec(n)).filter((m): m is RegExpExecArray => m !== null);
  if (epochs.length === 0) return null;
  const latest = epochs.reduce((a, b) => (Number(b[1]) > Number(a[1]) ? b : a));
  return { path: join(dir, latest[0]), epoch: Number(latest[1]) };
}

/** How `loadCheckpoint` tells a checkpoint of this run. */
interface Expected {
  readonly settings: RunSettings;
  readonly epochs: number;
  /** Optimizer steps per epoch. */
  readonly steps: number;
}

const CORRUPT = 'the checkpoint is corrupt (training never writes a non-finite one); delete it or train afresh without resume';

/** Every tensor of a checkpoint file, read to the host; a missing one, or one not finite, is named. */
async function readCheckpointFile(file: string, names: readonly string[], opts: { finiteOnly: boolean }): Promise<Map<string, { shape: readonly number[]; data: Float32Array }>> {
  if (!existsSync(file)) throw new CheckpointError(file, 'no such file: the checkpoint is incomplete; delete it or train afresh without resume');
  const f = await openSafetensors(file);
  try {
    const have = f.keys();
    const out = new Map<string, { shape: readonly number[]; data: Float32Array }>();
    for (const n of names) {
      if (!have.includes(n)) throw new CheckpointError(file, `no tensor '${n}' (it holds ${have.length}: ${have.slice(0, 4).join(', ')}${have.length > 4 ? ', …' : ''}); the checkpoint is incomplete or not of this head`);
      const t = await f.readFloat32(n);
      const fault = headValuesFault(n, t.data, opts.finiteOnly ? Infinity : undefined);
      if (fault) throw new CheckpointError(file, `${describeHeadFault(fault)}: ${CORRUPT}`);
      out.set(n, { shape: t.shape, data: t.data });
    }
    if (have.length !== names.length) throw new CheckpointError(file, `holds ${have.length} tensors, a checkpoint of this head ${names.length}`);
    return out;
  } finally {
    await f.close();
  }
}

/**
 * Restores the latest checkpoint into `head` and `optimizer` after checking that it belongs to this
 * run (`expected`) and is whole; null when there is none. Nothing is changed when it is refused.
 */
async function loadCheckpoint(dir: string, head: TrainableHead, optimizer: tf.Optimizer, expected: Expected): Promise<{ epoch: number; curve: EpochStats[] } | null> {
  const latest = await latestCheckpoint(dir);
  if (!latest) return null;
  const { path: at, epoch: folderEpoch } = latest;

  // state.json: this run's settings, an epoch its folder name and the run's length agree with, a whole curve.
  const stateFile = join(at, 'state.json');
  if (!existsSync(stateFile)) throw new CheckpointError(stateFile, 'no such file: the checkpoint is incomplete; delete it or train afresh without resume');
  let state: { epoch?: unknown; head?: { head?: unknown }; settings?: unknown; curve?: unknown };
  try {
    state = JSON.parse(await readFile(stateFile, 'utf8')) as typeof state;
    if (!state || typeof state !== 'object' || Array.isArray(state)) throw new Error('expected a JSON object');
  } catch (e) {
    throw new CheckpointError(stateFile, `malformed (${(e as Error).message}); delete the checkpoint or train afresh without resume`);
  }
  if (state.head?.head !== head.config.head) throw new CheckpointError(at, `checkpoint is of head '${String(state.head?.head)}', not '${head.config.head}'`);
  if (!state.settings || typeof state.settings !== 'object' || Array.isArray(state.settings)) {
    throw new CheckpointError(stateFile, 'records no run settings (written by an older version), so it cannot be checked against this run; train afresh without resume');
  }
  const saved = state.settings as Record<string, unknown>;
  const differences = [...new Set([...Object.keys(saved), ...Object.keys(expected.settings)])]
    .filter((k) => JSON.stringify(saved[k] ?? null) !== JSON.stringify(expected.settings[k] ?? null))
    .map((k) => ({ name: k, saved: saved[k] ?? null, now: expected.settings[k] ?? null }));
  if (differences.length > 0) {
    throw new CheckpointError(at, `made with other settings: ${differences.map((d) => `${d.name} ${JSON.stringify(d.saved)} there, ${JSON.stringify(d.now)} now`).join('; ')}. `
      + 'Resume with the settings it was made with, or train afresh without resume (which replaces it)', differences);
  }
  if (typeof state.epoch !== 'number' || !Number.isSafeInteger(state.epoch) || state.epoch !== folderEpoch) {
    throw new CheckpointError(stateFile, `"epoch" is ${JSON.stringify(state.epoch)}, its folder says ${folderEpoch}: ${CORRUPT}`);
  }
  const epoch = state.epoch;
  if (epoch < 1) throw new CheckpointError(stateFile, `"epoch" is ${epoch}: ${CORRUPT}`);
  if (epoch > expected.epochs) throw new CheckpointError(at, `the checkpoint is after epoch ${epoch}, more than the ${expected.epochs} epochs asked for: ask for ${epoch} or more to resume it`);
  const curve = state.curve;
  const isStats = (e: unknown, i: number): boolean => {
    const x = e as Partial<EpochStats> | null;
    return !!x && x.epoch === i + 1 && [x.loss, x.nnzQuery, x.nnzDocument].every((v) => typeof v === 'number' && Number.isFinite(v));
  };
  if (!Array.isArray(curve) || curve.length !== epoch || !curve.every(isStats)) {
    throw new CheckpointError(stateFile, `"curve" must list epochs 1 … ${epoch} with finite numbers: ${CORRUPT}`);
  }

  // The tensors: every one present, of the head's shapes, finite (the head's also within MAX_HEAD_WEIGHT).
  const vars = head.trainable;
  const headFile = join(at, 'head.safetensors');
  const headT = await readCheckpointFile(headFile, vars.map((_, i) => `var.${i}`), { finiteOnly: false });
  vars.forEach((v, i) => {
    const t = headT.get(`var.${i}`)!;
    if (!tf.util.arraysEqual([...t.shape], v.shape)) throw new CheckpointError(headFile, `'var.${i}' has shape [${t.shape}], the head needs [${v.shape}]`);
  });
  const optFile = join(at, 'optimizer.safetensors');
  const optNames = Array.from({ length: 1 + 2 * vars.length }, (_, i) => `state.${String(i).padStart(4, '0')}`);
  const optT = await readCheckpointFile(optFile, optNames, { finiteOnly: true });
  optNames.slice(1).forEach((n, j) => {
    const v = vars[j % vars.length]!;
    if (!tf.util.arraysEqual([...optT.get(n)!.shape], v.shape)) throw new CheckpointError(optFile, `'${n}' has shape [${optT.get(n)!.shape}], the head's variable needs [${v.shape}]`);
  });
  const iterations = optT.get(optNames[0]!)!.data[0];
  if (iterations !== epoch * expected.steps) {
    throw new CheckpointError(optFile, `the step count is ${iterations}, but ${epoch} epochs of ${expected.steps} steps make ${epoch * expected.steps}: ${CORRUPT}`);
  }
  const acc = adamPowers(optimizer);
  const powers = acc ? await readCheckpointFile(join(at, 'adam-powers.safetensors'), ['beta1_power', 'beta2_power'], { finiteOnly: true }) : undefined;

  // Checked: restore.
  vars.forEach((v, i) => tf.tidy(() => v.assign(tf.tensor(headT.get(`var.${i}`)!.data, [...v.shape], 'float32'))));
  const weights = optNames.map((n, i) => {
    const t = optT.get(n)!;
    return { name: n, tensor: i === 0 ? tf.scalar(Math.round(t.data[0]!), 'int32') : tf.tensor(t.data, [...t.shape], 'float32') };
  });
  await optimizer.setWeights(weights); // setWeights copies the moments into variables
  tf.dispose(weights.map((w) => w.tensor));
  if (acc && powers) {
    tf.tidy(() => {
      acc.accBeta1.assign(tf.scalar(powers.get('beta1_power')!.data[0]!));
      acc.accBeta2.assign(tf.scalar(powers.get('beta2_power')!.data[0]!));
    });
  }
  return { epoch, curve: curve as EpochStats[] };
}
