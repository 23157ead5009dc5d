/**
 * `bge-m3 score --model DIR --queries FILE.jsonl --passages FILE.jsonl [--weights 0.4,0.2,0.4]
 *   [--max-query-length N] [--max-passage-length N] [--batch-size N] [--backend NAME] [--json]`
 * Prints one JSON object of queries × passages matrices: dense, sparse, colbert and the combinations.
 */
import { checkModeWeights, scoreMatrices } from '../scores.js';
import { defineCommand } from './command.js';
import { CliError, intFlag, lengthFlag, readJsonl, STDIN } from './io.js';

export const USAGE = `Usage: bge-m3 score --model DIR --queries FILE.jsonl --passages FILE.jsonl [--weights W_DENSE,W_SPARSE,W_COLBERT]
                   [--max-query-length N] [--max-passage-length N] [--batch-size N] [--backend NAME] [--json]

Either file may be - (standard input), not both. Prints one JSON object (its only output format, so --json,
which other commands take to print JSON instead of a table, changes nothing here): {"queries": [ids], "passages": [ids], "weights": [...], "dense": [[...]], "sparse": ...,
"colbert": ..., "sparse+dense": ..., "colbert+sparse+dense": ...}, each a queries × passages matrix.
Defaults as FlagEmbedding's compute_score: weights 1,1,1; max query length 512; max passage length 8192
(each at most the model's own limit, its position table's size).
`;

export const run = defineCommand({
  name: 'score', usage: USAGE, positionals: false,
  options: {
    model: { type: 'string' }, queries: { type: 'string' }, passages: { type: 'string' }, weights: { type: 'string' },
    'max-query-length': { type: 'string' }, 'max-passage-length': { type: 'string' }, 'batch-size': { type: 'string' },
    backend: { type: 'string' }, json: { type: 'boolean' },
  },
}, async ({ values, stdout, warn, modelDir, load }) => {
  const dir = modelDir();
  for (const f of ['queries', 'passages'] as const) if (!values[f]) throw new CliError(`--${f} is required`, true);
  if (values.queries === STDIN && values.passages === STDIN) throw new CliError('--queries and --passages cannot both read standard input (-)', true);
  let weights;
  try {
    weights = checkModeWeights((values.weights ?? '1,1,1').split(',').map((x) => (x.trim() === '' ? NaN : Number(x))), '--weights');
  } catch (e) {
    throw new CliError((e as Error).message, true);
  }
  const maxQFlag = intFlag(values['max-query-length'], 'max-query-length', 2);
  const maxPFlag = intFlag(values['max-passage-length'], 'max-passage-length', 2);
  const batchSize = intFlag(values['batch-size'], 'batch-size', 1);
  const queries = await readJsonl(values.queries!, warn);
  const passages = await readJsonl(values.passages!, warn);
  if (queries.length === 0) throw new CliError(`${values.queries}: no queries`);
  if (passages.length === 0) throw new CliError(`${values.passages}: no passages`);

  const m3 = await load(dir);
  try {
    const maxQ = lengthFlag(maxQFlag, 'max-query-length', m3, 512);
    const maxP = lengthFlag(maxPFlag, 'max-passage-length', m3, m3.defaultMaxLength);
    const all = { returnDense: true, returnSparse: true, returnColbert: true, batchSize };
    const q = await m3.encode(queries.map((r) => r.text), { ...all, maxLength: maxQ });
    const p = await m3.encode(passages.map((r) => r.text), { ...all, maxLength: maxP });
    const matrices = scoreMatrices(q, p, weights);
    stdout.write(`${JSON.stringify({ queries: queries.map((r) => r.id), passages: passages.map((r) => r.id), weights, ...matrices })}\n`);
  } finally {
    m3.dispose();
  }
  return 0;
});
