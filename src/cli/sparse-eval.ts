/**
 * `bge-m3 sparse eval`: retrieval metrics of a sparse head (or BGE-M3's dense, ColBERT and hybrid
 * scores) on a BEIR-layout set, with trec_eval's semantics; optionally the TREC run file.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readBeir } from '../lab/beir.js';
import { checkEvaluable, EVAL_MODES, evaluateBeir, HYBRID_WEIGHTS, type EvalMode } from '../lab/evaluate.js';
import type { SparseHead } from '../lab/heads/head.js';
import { createHead, HEAD_NAMES } from '../lab/heads/registry.js';
import { METRIC_NAMES } from '../lab/metrics.js';
import { writeRunFile } from '../lab/runfile.js';
import { ENCODE_LIMITS } from '../batches.js';
import type { BgeM3 } from '../m3.js';
import { checkModeWeights, type ModeWeights } from '../scores.js';
import { checkWritable } from '../temp-path.js';
import { defineCommand } from './command.js';
import { CliError, cliCheck, intFlag, numberFlag } from './io.js';
import { createProgress } from './progress.js';

export const USAGE = `Usage: bge-m3 sparse eval --model DIR --beir DIR [--split test] [--head NAME|DIR] [--mode MODE]
                         [--run OUT.trec [--tag NAME]] [--force] [--json] [--k N] [--weights D,S,C] [--k1 X] [--b X] [--layer I]
                         [--max-query-length N] [--max-passage-length N] [--batch-size N] [--backend NAME]

Retrieves for every judged query of DIR/qrels/<split>.tsv over DIR/corpus.jsonl and scores the run
as trec_eval does: nDCG@10, MRR@10, Recall@100, MAP (queries without a relevant judgment skipped).
  --head NAME|DIR  a sparse head (${HEAD_NAMES.join(', ')}; default m3) or a folder saved by
                   bge-m3 sparse train (head.json + tensors); a head name always means the
                   built-in head: give a folder of that name as a path (./m3)
  --mode MODE      ${EVAL_MODES.join(' | ')} (default sparse): the head alone; dense; dense top k
                   re-ranked by ColBERT; sparse+dense; colbert+sparse+dense
  --weights D,S,C  hybrid weights for dense, sparse, ColBERT (default ${HYBRID_WEIGHTS.join(',')}, BGE-M3's paper)
  --k N            hits kept per query (default 1000)
  --k1 X, --b X    bm25 parameters (default 0.9, 0.4)
  --layer I        hidden_states index the head reads (0 = embeddings; default the last layer)
  --run OUT.trec   write the run (qid Q0 docid rank score tag); an existing file needs --force
  --json           print one JSON object instead of a table
`;

function weightsFlag(v: string | undefined): ModeWeights | undefined {
  if (v === undefined) return undefined;
  const parts = v.split(',').map((s) => Number(s));
  try {
    if (parts.length !== 3 || v.split(',').some((s) => s.trim() === '')) throw new Error(`three comma-separated numbers (dense,sparse,colbert), got '${v}'`);
    return checkModeWeights(parts, '--weights');
  } catch (e) {
    const msg = (e as Error).message;
    throw new CliError(msg.startsWith('--weights') ? msg : `--weights must be ${msg}`, true);
  }
}

/**
 * A head by name, or a trained head folder (loaded by the trainer's own reader). A head name always means
 * the built-in head, whatever folders the working directory holds (as in train and lens): a folder named
 * like a head is given as a path, e.g. `./m3`.
 */
async function resolveHead(spec: string, model: BgeM3, opts: { layer?: number; k1?: number; b?: number }): Promise<SparseHead> {
  if (HEAD_NAMES.includes(spec)) return createHead(spec, model, opts);
  if (existsSync(spec) && statSync(spec).isDirectory()) {
    if (!existsSync(join(spec, 'head.json'))) throw new CliError(`--head ${spec}: a trained head folder holds head.json; none there`);
    const modulePath = '../lab/head-io.js'; // the trainer's save/load (a path in a variable: loaded only when used)
    let io: { loadHead: (dir: string, model: BgeM3) => Promise<SparseHead> };
    try {
      io = (await import(modulePath)) as typeof io;
    } catch {
      throw new CliError(`--head ${spec}: this build cannot load trained heads (no head-io module)`);
    }
    return io.loadHead(spec, model);
  }
  throw new CliError(`--head must be one of ${HEAD_NAMES.join(', ')} or a trained head folder, got '${spec}'`, true);
}

const pct = (x: number) => x.toFixed(4);

export const run = defineCommand({
  name: 'sparse eval', usage: USAGE, positionals: false,
  options: {
    model: { type: 'string' }, beir: { type: 'string' }, split: { type: 'string' }, head: { type: 'string' }, mode: { type: 'string' },
    run: { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' }, k: { type: 'string' }, weights: { type: 'string' },
    k1: { type: 'string' }, b: { type: 'string' }, layer: { type: 'string' }, tag: { type: 'string' },
    'max-query-length': { type: 'string' }, 'max-passage-length': { type: 'string' }, 'batch-size': { type: 'string' },
    backend: { type: 'string' },
  },
}, async ({ values, stdout, stderr, warn, modelDir, load }) => {
  const dir = modelDir();
  if (!values.beir) throw new CliError('--beir DIR is required', true);
  const mode = (values.mode ?? 'sparse') as EvalMode;
  if (!(EVAL_MODES as readonly string[]).includes(mode)) throw new CliError(`--mode must be one of ${EVAL_MODES.join(', ')}, got '${values.mode}'`, true);
  const k = intFlag(values.k, 'k', 1);
  const weights = weightsFlag(values.weights);
  const headOpts = { layer: intFlag(values.layer, 'layer', 0), k1: numberFlag(values.k1, 'k1'), b: numberFlag(values.b, 'b') };
  const batchSize = intFlag(values['batch-size'], 'batch-size', 1);
  const maxQueryLength = intFlag(values['max-query-length'], 'max-query-length', 2);
  const maxPassageLength = intFlag(values['max-passage-length'], 'max-passage-length', 2);
  const headSpec = values.head ?? 'm3';
  const tag = values.tag ?? `bge-m3-${mode === 'sparse' ? headSpec.replace(/[^\w.-]+/g, '_') : mode}`;
  if (values.run !== undefined && existsSync(values.run) && !values.force) throw new CliError(`${values.run} exists; pass --force to replace it`);
  if (values.run !== undefined) cliCheck(() => checkWritable(values.run!, '--run'));

  const split = values.split ?? 'test';
  const set = await readBeir(values.beir, split, { onWarning: warn });
  cliCheck(() => checkEvaluable(set, join(values.beir!, 'qrels', `${split}.tsv`)));
  if (values.run !== undefined) {
    // A run file separates fields by whitespace: refuse ids it cannot hold before any work is done.
    if (/\s/.test(tag) || tag === '') throw new CliError(`--tag must be a non-empty word without whitespace, got '${tag}'`, true);
    const bad = [...set.qrels.keys(), ...set.corpus.keys()].find((id) => /\s/.test(id));
    if (bad !== undefined) throw new CliError(`--run: id ${JSON.stringify(bad)} contains whitespace, which a TREC run file cannot hold`);
  }
  const m3 = await load(dir);
  let head: SparseHead | undefined;
  const bars = new Map<string, ReturnType<typeof createProgress>>();
  try {
    try {
      head = await resolveHead(headSpec, m3, headOpts);
    } catch (e) {
      throw e instanceof CliError ? e : new CliError(`--head ${headSpec}: ${(e as Error).message}`);
    }
    const res = await evaluateBeir(m3, set, head, {
      mode, k, weights, maxQueryLength, maxPassageLength,
      limits: { ...ENCODE_LIMITS, batchSize: batchSize ?? ENCODE_LIMITS.batchSize },
      onProgress: (stage, done, total) => {
        let bar = bars.get(stage);
        if (!bar) bars.set(stage, (bar = createProgress(stage, total, 'items', { stream: stderr })));
        bar.update(done);
      },
    });
    for (const b of bars.values()) b.stop();
    if (values.run !== undefined) await writeRunFile(values.run, res.run, tag, { force: !!values.force });
    const summary: Record<string, unknown> = {
      ...res.metrics, queries: res.queries, skipped_queries: res.skipped, documents: set.corpus.size,
      head: head.name, mode, ...(res.index ? {
        index: {
          avg_doc_nonzeros: res.index.avgDocNonZeros, avg_query_nonzeros: res.index.avgQueryNonZeros, flops: res.index.flops,
          postings_per_query: res.index.postingsPerQuery, terms: res.index.terms, postings: res.index.postings,
          bytes: res.index.bytes, query_latency_ms_median: res.index.latencyMsMedian,
        },
      } : {}),
    };
    if (values.json) {
      stdout.write(`${JSON.stringify(summary)}\n`);
    } else {
      stdout.write(`${values.beir} (${split}): ${res.queries} queries, ${set.corpus.size} documents; head ${head.name}, mode ${mode}\n`);
      for (const m of METRIC_NAMES) stdout.write(`  ${m.padEnd(11)} ${pct(res.metrics[m])}\n`);
      if (res.index) {
        const s = res.index;
        stdout.write(`  non-zeros per query ${s.avgQueryNonZeros.toFixed(1)}, per document ${s.avgDocNonZeros.toFixed(1)}; FLOPS ${s.flops.toFixed(3)}; postings touched per query ${s.postingsPerQuery.toFixed(1)}; index ${s.bytes} bytes; median query ${s.latencyMsMedian.toFixed(3)} ms\n`);
      }
    }
  } finally {
    for (const b of bars.values()) b.stop();
    head?.dispose();
    m3.dispose();
  }
  return 0;
});
