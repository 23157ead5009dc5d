/**
 * Evaluates a sparse head (and BGE-M3's dense and ColBERT outputs) on a BEIR-layout set: weigh the
 * corpus and the judged queries, index, retrieve, score with trec_eval's measures.
 */
import type { BgeM3 } from '../m3.js';
import type { ColbertVecs, LexicalWeights, ModeWeights } from '../scores.js';
import { ENCODE_LIMITS, planBatches, type BatchLimits } from '../batches.js';
import { documentText, type BeirSet } from './beir.js';
import type { SparseHead, Side } from './heads/head.js';
import { M3Head } from './heads/m3.js';
import { hiddenStates } from './hidden.js';
import { InvertedIndex, type IndexStats } from './index.js';
import { evaluateRun, hasRelevant, type Metrics } from './metrics.js';
import { colbertRerank, denseRetrieve, hybridRerank, median, sparseRetrieve, unionRuns, type RunMap } from './retrieve.js';

export const EVAL_MODES = ['sparse', 'dense', 'colbert', 'hybrid', 'all'] as const;
export type EvalMode = (typeof EVAL_MODES)[number];

/** BGE-M3's paper mixes dense + 0.3·sparse (+ colbert): its weights for hybrid retrieval. */
export const HYBRID_WEIGHTS: ModeWeights = [1, 0.3, 1];

export interface EvalOptions {
  /** 'sparse' (default): the head alone; 'dense'; 'colbert': dense top k re-ranked by max-sim;
   *  'hybrid': sparse+dense; 'all': colbert+sparse+dense (both on the union of sparse and dense top k). */
  readonly mode?: EvalMode;
  /** Hits kept per query (default 1000, as BEIR). */
  readonly k?: number;
  /** [dense, sparse, colbert] for the hybrids (default [1, 0.3, 1]). */
  readonly weights?: ModeWeights;
  readonly maxQueryLength?: number; // default 512
  readonly maxPassageLength?: number; // default the model's defaultMaxLength (encode's)
  readonly limits?: BatchLimits; // default ENCODE_LIMITS (encode's)
  /** Called with a stage name and progress within it. */
  readonly onProgress?: (stage: string, done: number, total: number) => void;
}

export interface EvalResult {
  readonly metrics: Metrics;
  readonly queries: number;
  readonly skipped: number;
  readonly perQuery: ReadonlyMap<string, Metrics>;
  readonly run: RunMap;
  /** Present when the sparse head was used. */
  readonly index?: IndexStats & { readonly latencyMsMedian: number };
}

/**
 * Lexical weights of `inputIds` by `head`, hidden states batched as encode batches them (so `m3`
 * gives encode's weights bit for bit).
 */
export async function weighTexts(
  model: BgeM3, head: SparseHead, inputIds: readonly number[][], side: Side, limits: BatchLimits,
  onBatch?: (done: number) => void,
): Promise<LexicalWeights[]> {
  if (!head.needsHidden) return head.weigh({ inputIds, side });
  const out = new Array<LexicalWeights>(inputIds.length);
  let done = 0;
  for (const members of planBatches(inputIds.map((r) => r.length), limits)) {
    const rows = members.map((i) => inputIds[i]!);
    const hidden = await hiddenStates(model, rows, head.layer);
    try {
      const w = await head.weigh({ inputIds: rows, hidden, side });
      members.forEach((i, b) => { out[i] = w[b]!; });
    } finally {
      hidden.dispose();
    }
    onBatch?.((done += members.length));
  }
  return out;
}

/**
 * Refuses a set with nothing to evaluate (no judged query with a relevant document): all-zero metrics over
 * no query would read as a result. `qrelsName` names the qrels file in the message.
 */
export function checkEvaluable(set: Pick<BeirSet, 'qrels'>, qrelsName = 'the qrels'): void {
  for (const judged of set.qrels.values()) if (hasRelevant(judged)) return;
  throw new Error(`${qrelsName}: nothing to evaluate: none of its ${set.qrels.size} judged queries has a relevant judgment (grade >= 1)`);
}

export async function evaluateBeir(model: BgeM3, set: BeirSet, head: SparseHead, opts: EvalOptions = {}): Promise<EvalResult> {
  const mode = opts.mode ?? 'sparse';
  if (!(EVAL_MODES as readonly string[]).includes(mode)) throw new Error(`mode must be one of ${EVAL_MODES.join(', ')}, got ${JSON.stringify(mode)}`);
  const k = opts.k ?? 1000;
  const weights = opts.weights ?? HYBRID_WEIGHTS;
  const limits = opts.limits ?? ENCODE_LIMITS;
  const progress = opts.onProgress ?? (() => {});
  const qids = [...set.qrels.keys()]; // judged queries only, as BEIR evaluates
  const docIds = [...set.corpus.keys()];
  if (docIds.length === 0) throw new Error('the corpus is empty');
  checkEvaluable(set);
  const qIds = model.tokenize(qids.map((q) => set.queries.get(q)!), opts.maxQueryLength ?? 512);
  const dIds = model.tokenize(docIds.map((d) => documentText(set.corpus.get(d)!)), opts.maxPassageLength ?? model.defaultMaxLength);

  const needSparse = mode === 'sparse' || mode === 'hybrid' || mode === 'all';
  const needDense = mode !== 'sparse';
  const needColbert = mode === 'colbert' || mode === 'all';
  // BGE-M3's own head on its last layer is what encode computes: take it from the same pass.
  const sparseFromEncode = needDense && head instanceof M3Head && head.layer === undefined;
  const encode = async (ids: number[][], stage: string) => model.encode({ inputIds: ids }, {
    ...limits, maxLength: model.maxLength, returnDense: true, returnSparse: sparseFromEncode, returnColbert: needColbert,
    onProgress: (d, t) => progress(stage, d, t),
  });
  const qEnc = needDense ? await encode(qIds, 'encode queries') : undefined;
  const dEnc = needDense ? await encode(dIds, 'encode corpus') : undefined;

  let sparseRun: RunMap | undefined;
  let index: EvalResult['index'];
  const qSparse = new Map<string, LexicalWeights>();
  const dSparse = new Map<string, LexicalWeights>();
  if (needSparse) {
    head.fit?.(dIds);
    const dw = sparseFromEncode ? dEnc!.lexicalWeights! : await weighTexts(model, head, dIds, 'document', limits, (d) => progress('weigh corpus', d, dIds.length));
    const qw = sparseFromEncode ? qEnc!.lexicalWeights! : await weighTexts(model, head, qIds, 'query', limits, (d) => progress('weigh queries', d, qIds.length));
    docIds.forEach((id, i) => dSparse.set(id, dw[i]!));
    qids.forEach((id, i) => qSparse.set(id, qw[i]!));
    const inv = new InvertedIndex(docIds, dw);
    const searched = sparseRetrieve(inv, qSparse, k);
    sparseRun = searched.run;
    index = { ...inv.stats(qw), latencyMsMedian: median(searched.latencyMs) };
  }

  let run: RunMap;
  if (mode === 'sparse') {
    run = sparseRun!;
  } else {
    const qDense = new Map(qids.map((id, i) => [id, qEnc!.denseVecs![i]!]));
    const dDense = new Map(docIds.map((id, i) => [id, dEnc!.denseVecs![i]!]));
    const denseRun = denseRetrieve(dDense, qDense, k);
    const colbert = (enc: typeof qEnc, ids: string[]) => new Map<string, ColbertVecs>(ids.map((id, i) => [id, enc!.colbertVecs![i]!]));
    if (mode === 'dense') run = denseRun;
    else if (mode === 'colbert') run = colbertRerank(denseRun, colbert(qEnc, qids), colbert(dEnc, docIds));
    else {
      const q = { dense: qDense, sparse: qSparse, colbert: needColbert ? colbert(qEnc, qids) : undefined };
      const d = { dense: dDense, sparse: dSparse, colbert: needColbert ? colbert(dEnc, docIds) : undefined };
      run = hybridRerank(unionRuns(sparseRun!, denseRun), q, d, mode === 'hybrid' ? 'sparse+dense' : 'colbert+sparse+dense', weights, k);
    }
  }
  const e = evaluateRun(run, set.qrels);
  return { metrics: e.mean, queries: e.queries, skipped: e.skipped, perQuery: e.perQuery, run, index };
}
