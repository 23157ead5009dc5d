/**
 * `bge-m3 sparse train`: trains a sparse head on the frozen encoder from a BEIR-layout set
 * (src/lab/train.ts). Training pairs are the qrels lines with score > 0; hard negatives are the
 * same query's score <= 0 lines when the qrels have them, else a query meets only in-batch
 * negatives (random corpus documents would be easy negatives that add little to those).
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import cliProgress from 'cli-progress';
import { documentText, readBeir } from '../lab/beir.js';
import { ENCODE_LIMITS } from '../batches.js';
import { TRAINABLE_HEAD_NAMES } from '../lab/heads/registry.js';
import { notReplaceable, saveHead } from '../lab/head-io.js';
import type { HiddenSource } from '../lab/hidden-source.js';
import { memoryHiddenSource } from '../lab/hidden-source.js';
import { cacheMismatch, corpusDigest, corpusTexts, modelFingerprint, openHiddenCache, queryTexts, type CacheText, type HiddenCache } from '../lab/hidden-cache.js';
import { CheckpointError, latestCheckpoint, TrainingDivergedError, trainHead, type TeacherScores, type TrainExample } from '../lab/train.js';
import type { BgeM3 } from '../m3.js';
import { colbertScore, denseScore } from '../scores.js';
import { checkWritable } from '../temp-path.js';
import { defineCommand } from './command.js';
import { CliError, cliCheck, intFlag, numberFlag } from './io.js';
import { neuralHead } from './sparse-head-arg.js';

export const USAGE = `Usage: bge-m3 sparse train --model DIR --beir DIR --head NAME|DIR --out DIR [--split train]
                          [--epochs N] [--seed S] [--batch-size N] [--lr X] [--temperature X]
                          [--flops-weight X] [--flops-query X] [--flops-document X] [--hard-negatives N]
                          [--distill dense|colbert] [--distill-weight X] [--layer I] [--top-k K]
                          [--cache DIR] [--resume] [--force] [--max-length N] [--backend NAME]

Trains a sparse head (m3, m3-log1p, splade, or a saved head folder to continue from) on the frozen
encoder: InfoNCE over each query's relevant document against the batch's other documents and its
hard negatives (qrels lines with score <= 0), plus the FLOPS regulariser and optional distillation
from the model's dense or ColBERT scores. Adam; the batch order is fixed by --seed.
  --epochs N          default 3            --batch-size N     queries per step, default 16
  --lr X              default 1e-3         --temperature X    softmax temperature, default 0.05
  --flops-weight X    FLOPS weight for queries and documents (default 0); --flops-query/--flops-document
                      set one side
  --hard-negatives N  per query per step, default 1
  --distill MODE      add KL to the softmax of the dense or ColBERT scores, weight --distill-weight (1)
  --layer I           read hidden_states[I] (default: the last layer)
  --top-k K           splade: weights kept per text at inference
  --cache DIR         hidden states from 'bge-m3 sparse cache': DIR/queries and DIR/corpus (written
                      with --side queries / corpus of this --beir set, same model, layer and
                      --max-length, default batch limits; anything else is refused, naming it);
                      default: computed in memory, batched as the cache batches (same numbers)
  --resume            continue from the checkpoint in OUT.train/ (written after every epoch); one made
                      with other settings (model, data, --lr, --batch-size, --seed, …) is refused
  --force             replace an existing OUT, if it is a head folder written by this command, and
                      start over when OUT.train/ holds a checkpoint (refused without --resume or --force)
A run that diverges (a non-finite loss or head) stops with exit 1 and writes no head.
Writes the head folder OUT (head.json, the weights, training.json with the loss curve) and prints
one JSON line {"out", "head", "examples", "resumedAfter", "curve"}. (--json is accepted: it is the only format)
`;

/** The flag (or input) behind each setting a checkpoint records (trainHead's `RunSettings` and this command's own). */
const SETTING_FLAGS: Record<string, string> = {
  head: '--head/--layer/--top-k (the head)', startWeights: '--head (its starting weights)', examples: 'the training pairs (--beir qrels, --split)',
  batchSize: '--batch-size', learningRate: '--lr', seed: '--seed', temperature: '--temperature', flopsQuery: '--flops-query',
  flopsDocument: '--flops-document', hardNegatives: '--hard-negatives', teacherWeight: '--distill-weight',
  model: '--model (its weights)', texts: 'the texts (--beir corpus.jsonl, queries.jsonl)', maxLength: '--max-length', distill: '--distill',
};

/** A checkpoint or divergence error in this command's words (flags instead of option names). */
function trainingError(e: unknown, checkpointDir: string, out: string): unknown {
  if (e instanceof CheckpointError && e.differences.length > 0) {
    const diffs = e.differences.map((d) => `${SETTING_FLAGS[d.name] ?? d.name}: ${JSON.stringify(d.saved)} in the checkpoint, ${JSON.stringify(d.now)} now`);
    return new CliError(`--resume: ${e.checkpoint} was made with other settings:\n  ${diffs.join('\n  ')}\n`
      + 'Resume with the settings it was made with, or train afresh without --resume (which replaces the checkpoint).');
  }
  if (e instanceof CheckpointError) return new CliError(`--resume: ${e.message}`);
  if (e instanceof TrainingDivergedError) {
    const kept = e.epoch > 1 ? `; the checkpoint of epoch ${e.epoch - 1} in ${checkpointDir} is kept` : '';
    return new CliError(`${TrainingDivergedError.what(e.epoch, e.step, e.steps, e.loss, e.lossAfter, e.fault)}.\n`
      + `No head was written to ${out}${kept}. Try a lower --lr (it is ${e.learningRate}; the default is 1e-3), or a higher --temperature.`);
  }
  return e;
}

/** Hidden states of queries ('q:' ids) and documents ('d:' ids) from one source each. */
function prefixed(queries: HiddenSource, docs: HiddenSource): HiddenSource {
  return {
    hiddenSize: queries.hiddenSize,
    async get(id) {
      const src = id.startsWith('q:') ? queries : docs;
      const r = await src.get(id.slice(2));
      return { ...r, id };
    },
  };
}

/**
 * Opens DIR/queries or DIR/corpus and checks it is the cache this run would compute in memory: the
 * same model, layer, ids and texts (the whole side of the BEIR set), encode's limits and --max-length.
 */
async function openCacheSide(
  dir: string, side: 'queries' | 'corpus', texts: CacheText[], run: { m3: BgeM3; model: string; beir: string; layer: number; maxLength?: number },
  warn: (w: string) => void,
): Promise<HiddenCache> {
  const at = join(dir, side);
  const rebuild = [
    'bge-m3 sparse cache --model', run.model, '--beir', run.beir, '--side', side,
    ...(run.layer !== run.m3.config.num_hidden_layers ? ['--layer', String(run.layer)] : []),
    ...(run.maxLength !== undefined ? ['--max-length', String(run.maxLength)] : []), '--out', at,
  ].join(' ');
  if (!existsSync(at)) throw new CliError(`--cache ${dir}: no '${side}' cache in it (write it with: ${rebuild})`);
  const cache = await openHiddenCache(at);
  const fault = cacheMismatch(cache.manifest, run.m3, texts, { layer: run.layer, maxLength: run.maxLength }, join(run.beir, `${side}.jsonl`));
  if (fault) {
    await cache.close();
    throw new CliError(`--cache ${at} is not the cache of this run: ${fault}. Rebuild it (into a new directory): ${rebuild}`);
  }
  if (cache.dtype === 'F16') warn(`--cache ${at} holds F16 hidden states (rounded to half precision): training will not equal training in memory bit for bit`);
  return cache;
}

export const run = defineCommand({
  name: 'sparse train', usage: USAGE, positionals: false,
  options: {
    model: { type: 'string' }, beir: { type: 'string' }, split: { type: 'string' }, head: { type: 'string' }, out: { type: 'string' },
    epochs: { type: 'string' }, seed: { type: 'string' }, 'batch-size': { type: 'string' }, lr: { type: 'string' }, temperature: { type: 'string' },
    'flops-weight': { type: 'string' }, 'flops-query': { type: 'string' }, 'flops-document': { type: 'string' }, 'hard-negatives': { type: 'string' },
    distill: { type: 'string' }, 'distill-weight': { type: 'string' }, layer: { type: 'string' }, 'top-k': { type: 'string' },
    cache: { type: 'string' }, resume: { type: 'boolean' }, force: { type: 'boolean' }, 'max-length': { type: 'string' },
    backend: { type: 'string' }, json: { type: 'boolean' },
  },
}, async ({ values, stdout, stderr, warn, modelDir, load }) => {
  const dir = modelDir();
  for (const f of ['beir', 'head', 'out'] as const) if (!values[f]) throw new CliError(`--${f} is required`, true);
  const out = values.out!;
  if (existsSync(out) && !values.force) throw new CliError(`${out} exists; pass --force to replace it`);
  const refused = values.force ? await notReplaceable(out) : null;
  if (refused) throw new CliError(`--force: ${refused}; refusing to replace it (nothing was deleted)`);
  // A fresh run replaces OUT.train's checkpoint after its first epoch: only when asked to.
  const checkpointDir = join(dirname(out), `${basename(out)}.train`);
  const checkpoint = await latestCheckpoint(checkpointDir);
  if (checkpoint && !values.resume && !values.force) {
    throw new CliError(`${checkpoint.path} holds the checkpoint of an earlier run (after epoch ${checkpoint.epoch}): pass --resume to continue it, or --force to start over (which replaces it)`);
  }
  if (!checkpoint && values.resume) warn(`--resume: no checkpoint in ${checkpointDir}; training from the start`);
  cliCheck(() => checkWritable(out, '--out', 'folder'));
  const both = numberFlag(values['flops-weight'], 'flops-weight', 'non-negative') ?? 0;
  const opts = {
    epochs: intFlag(values.epochs, 'epochs', 1) ?? 3,
    seed: intFlag(values.seed, 'seed', 0) ?? 0,
    batchSize: intFlag(values['batch-size'], 'batch-size', 1) ?? 16,
    learningRate: numberFlag(values.lr, 'lr', 'positive') ?? 1e-3,
    temperature: numberFlag(values.temperature, 'temperature', 'positive') ?? 0.05,
    flopsQuery: numberFlag(values['flops-query'], 'flops-query', 'non-negative') ?? both,
    flopsDocument: numberFlag(values['flops-document'], 'flops-document', 'non-negative') ?? both,
    hardNegatives: intFlag(values['hard-negatives'], 'hard-negatives', 0) ?? 1,
  };
  if (values.distill !== undefined && values.distill !== 'dense' && values.distill !== 'colbert') throw new CliError(`--distill must be dense or colbert, got '${values.distill}'`, true);
  if (values['distill-weight'] !== undefined && values.distill === undefined) throw new CliError('--distill-weight needs --distill', true);
  const distillWeight = numberFlag(values['distill-weight'], 'distill-weight', 'non-negative') ?? 1;
  const layerFlag = intFlag(values.layer, 'layer', 0);
  const topK = intFlag(values['top-k'], 'top-k', 1);
  const maxLengthFlag = intFlag(values['max-length'], 'max-length', 2);
  const isName = TRAINABLE_HEAD_NAMES.includes(values.head!);
  if (!isName && (layerFlag !== undefined || topK !== undefined)) throw new CliError('--layer and --top-k set up a new head; a saved head folder keeps its own in head.json', true);
  if (topK !== undefined && values.head !== 'splade') throw new CliError('--top-k applies to the splade head only', true);

  const set = await readBeir(values.beir!, values.split ?? 'train', { onWarning: warn });
  const examples: TrainExample[] = [];
  for (const [qid, judged] of set.qrels) {
    const negatives = [...judged].filter(([d, s]) => s <= 0 && set.corpus.has(d)).map(([d]) => `d:${d}`);
    for (const [did, score] of judged) {
      if (score > 0 && set.corpus.has(did)) examples.push({ queryId: `q:${qid}`, positiveId: `d:${did}`, negativeIds: negatives });
    }
  }
  if (examples.length === 0) throw new CliError(`${values.beir}: qrels/${values.split ?? 'train'}.tsv has no judgment with score > 0 on a document of the corpus: nothing to train on`);

  const m3 = await load(dir);
  const maxLength = maxLengthFlag ?? m3.defaultMaxLength;
  const caches: HiddenCache[] = [];
  let bar: cliProgress.SingleBar | undefined;
  try {
    const L = m3.config.num_hidden_layers;
    if (layerFlag !== undefined && layerFlag > L) throw new CliError(`--layer must be in [0, ${L}] (0 = embeddings), got ${layerFlag}`, true);
    const head = await neuralHead(values.head!, m3, { layer: layerFlag, topK });
    try {
      const layer = head.layer ?? L;
      // The texts training reads; hidden states are those of the whole side's batches (as a cache holds them).
      const qIds = [...new Set(examples.map((e) => e.queryId.slice(2)))];
      const dIds = [...new Set(examples.flatMap((e) => [e.positiveId, ...(e.negativeIds ?? [])]).map((d) => d.slice(2)))];
      const sides = { queries: queryTexts(set.queries), corpus: corpusTexts(set.corpus) };
      let source: HiddenSource;
      if (values.cache !== undefined) {
        const want = { m3, model: dir, beir: values.beir!, layer, maxLength: maxLengthFlag };
        caches.push(await openCacheSide(values.cache, 'queries', sides.queries, want, warn));
        caches.push(await openCacheSide(values.cache, 'corpus', sides.corpus, want, warn));
        source = prefixed(caches[0]!, caches[1]!);
      } else {
        const memory = (texts: CacheText[], keep: string[]) => {
          const ids = m3.tokenize(texts.map((t) => t.text), maxLength);
          return memoryHiddenSource(m3, new Map(texts.map((t, i) => [t.id, ids[i]!])), layer, ENCODE_LIMITS, new Set(keep));
        };
        source = prefixed(await memory(sides.queries, qIds), await memory(sides.corpus, dIds));
      }
      let teacher: { scores: TeacherScores; weight: number } | undefined;
      if (values.distill !== undefined) {
        const mode = values.distill;
        const enc = async (texts: string[]) => m3.encode(texts, { maxLength, returnDense: mode === 'dense', returnColbert: mode === 'colbert' });
        const q = await enc(qIds.map((id) => set.queries.get(id)!));
        const d = await enc(dIds.map((id) => documentText(set.corpus.get(id)!)));
        const qi = new Map(qIds.map((id, i) => [`q:${id}`, i]));
        const di = new Map(dIds.map((id, i) => [`d:${id}`, i]));
        teacher = {
          weight: distillWeight,
          scores: (qid, docs) => docs.map((did) => (mode === 'dense'
            ? denseScore(q.denseVecs![qi.get(qid)!]!, d.denseVecs![di.get(did)!]!)
            : colbertScore(q.colbertVecs![qi.get(qid)!]!, d.colbertVecs![di.get(did)!]!))),
        };
      }
      const tty = (stderr as { isTTY?: boolean }).isTTY === true;
      if (tty) {
        bar = new cliProgress.SingleBar({
          stream: stderr, barsize: 24, fps: 8, gracefulExit: false, hideCursor: false, linewrap: false,
          format: 'train [{bar}] epoch {epoch}/{epochs} step {value}/{total} | loss {loss} | nnz/query {nq} nnz/doc {nd} | ETA {eta_formatted}',
        });
      }
      const settings = {
        model: modelFingerprint(m3), maxLength, distill: values.distill ?? null,
        // the texts training reads, with their ids (32 hex digits)
        texts: corpusDigest([...qIds.map((id) => ({ id: `q:${id}`, text: set.queries.get(id)! })), ...dIds.map((id) => ({ id: `d:${id}`, text: documentText(set.corpus.get(id)!) }))]).slice(0, 32),
      };
      const result = await trainHead(head, examples, source, {
        ...opts, teacher, checkpointDir, resume: !!values.resume, settings,
        onStep: (s) => {
          if (!bar) return;
          if (s.step === 1) bar.start(s.steps, 0, { epoch: s.epoch, epochs: opts.epochs, loss: '-', nq: '-', nd: '-' });
          bar.update(s.step, { epoch: s.epoch, epochs: opts.epochs, loss: s.loss.toFixed(4), nq: s.nnzQuery.toFixed(1), nd: s.nnzDocument.toFixed(1) });
        },
        onEpoch: (e) => {
          bar?.stop();
          stderr.write(`epoch ${e.epoch}/${opts.epochs}: loss ${e.loss.toFixed(4)}, nnz/query ${e.nnzQuery.toFixed(1)}, nnz/doc ${e.nnzDocument.toFixed(1)}\n`);
        },
      }).catch((e: unknown) => { throw trainingError(e, checkpointDir, out); });
      const report = { out, head: head.config, examples: examples.length, resumedAfter: result.resumedAfter, options: { ...opts, distill: values.distill ?? null }, curve: result.curve };
      await saveHead(head, out, { force: !!values.force, files: { 'training.json': `${JSON.stringify(report, null, 2)}\n` } });
      stdout.write(`${JSON.stringify({ out, head: head.config.head, examples: examples.length, resumedAfter: result.resumedAfter, curve: result.curve })}\n`);
    } finally {
      head.dispose();
    }
  } finally {
    bar?.stop();
    await Promise.all(caches.map((c) => c.close()));
    m3.dispose();
  }
  return 0;
});
