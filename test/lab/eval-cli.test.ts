/** `bge-m3 sparse eval` (the built binary): one JSON object, a run file that scores the same, clear refusals. */
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBeir } from '../../src/lab/beir.js';
import { evaluateRun } from '../../src/lab/metrics.js';
import { readRunFile } from '../../src/lab/runfile.js';
import { M3Tokenizer } from '../../src/tokenizer.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { makeSyntheticBeir } from './beir-fixture.js';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli', 'main.js');
const root = mkdtempSync(join(tmpdir(), 'eval-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, 'sparse', 'eval', ...args], { encoding: 'utf8' });

describe('bge-m3 sparse eval', () => {
  const set = join(root, 'set');
  beforeAll(async () => {
    makeSyntheticBeir(set, await M3Tokenizer.fromDir(checkpointDir('tiny-m3')));
  });

  it('--json prints one object with the metrics and index statistics; --run writes a run that scores the same', async () => {
    const run = join(root, 'bm25.trec');
    const r = cli('--model', checkpointDir('tiny-m3'), '--beir', set, '--head', 'bm25', '--k1', '1.2', '--b', '0.75', '--run', run, '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const out = JSON.parse(lines[0]!);
    for (const key of ['ndcg@10', 'mrr@10', 'recall@100', 'map']) expect(typeof out[key]).toBe('number');
    expect(out).toMatchObject({ queries: 24, skipped_queries: 2, documents: 72, head: 'bm25', mode: 'sparse' });
    expect(Object.keys(out.index)).toEqual(['avg_doc_nonzeros', 'avg_query_nonzeros', 'flops', 'postings_per_query', 'terms', 'postings', 'bytes', 'query_latency_ms_median']);
    const qrels = (await readBeir(set, 'test')).qrels;
    const mean = evaluateRun(await readRunFile(run), qrels).mean;
    for (const key of ['ndcg@10', 'mrr@10', 'recall@100', 'map'] as const) expect(mean[key]).toBe(out[key]);
    expect(readFileSync(run, 'utf8').split('\n')[0]).toMatch(/^q\d+ Q0 t\d+-a 1 [\d.e-]+ bge-m3-bm25$/);

    const again = cli('--model', checkpointDir('tiny-m3'), '--beir', set, '--head', 'bm25', '--run', run);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/bm25\.trec exists; pass --force to replace it/);
  });

  it('refuses bad flags (exit 2, naming the flag) and bad data (exit 1, naming file and line)', () => {
    const usage = (args: string[], msg: RegExp) => {
      const r = cli('--model', checkpointDir('tiny-m3'), '--beir', set, ...args);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(msg);
    };
    usage(['--mode', 'fast'], /--mode must be one of sparse, dense, colbert, hybrid, all, got 'fast'/);
    usage(['--head', 'nope'], /--head must be one of m3, .*bm25, idf.* or a trained head folder, got 'nope'/);
    usage(['--weights', '1,2'], /--weights must be three comma-separated numbers/);
    usage(['--k', '0'], /--k must be an integer >= 1/);
    const broken = join(root, 'broken');
    cpSync(set, broken, { recursive: true });
    appendFileSync(join(broken, 'qrels', 'test.tsv'), 'q1\tt1-a\n');
    const r = cli('--model', checkpointDir('tiny-m3'), '--beir', broken);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/qrels\/test\.tsv:\d+: expected 3 tab-separated fields/);
    writeFileSync(join(broken, 'queries.jsonl'), '{"_id": "q1"}\n');
    expect(cli('--model', checkpointDir('tiny-m3'), '--beir', broken).stderr).toMatch(/queries\.jsonl:1: "text" must be a string/);
  });

  it('nothing to evaluate (no judged query with a relevant document) is an error naming the qrels file, before any work', () => {
    const empty = join(root, 'no-relevant');
    cpSync(set, empty, { recursive: true });
    writeFileSync(join(empty, 'qrels', 'test.tsv'), 'query-id\tcorpus-id\tscore\nq1\tt1-a\t0\nq2\tt2-a\t0\n');
    const r = cli('--model', checkpointDir('tiny-m3'), '--beir', empty, '--head', 'bm25', '--json');
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/qrels\/test\.tsv: nothing to evaluate: none of its 2 judged queries has a relevant judgment/);
    expect(r.status).toBe(1);
    writeFileSync(join(empty, 'qrels', 'test.tsv'), 'query-id\tcorpus-id\tscore\n');
    expect(cli('--model', checkpointDir('tiny-m3'), '--beir', empty).stderr).toMatch(/nothing to evaluate: none of its 0 judged queries/);
  });

  it('a folder named m3 in the working directory does not shadow the built-in --head m3; ./m3 names the folder', () => {
    const cwd = join(root, 'cwd-with-m3');
    mkdirSync(join(cwd, 'm3'), { recursive: true });
    writeFileSync(join(cwd, 'm3', 'notes.txt'), 'not a head');
    const inCwd = (...args: string[]) => spawnSync(process.execPath, [BIN, 'sparse', 'eval', '--model', checkpointDir('tiny-m3'), '--beir', set, ...args], { encoding: 'utf8', cwd });
    const builtIn = inCwd('--head', 'm3', '--json');
    expect(builtIn.stderr).toBe('');
    expect(builtIn.status).toBe(0);
    expect(JSON.parse(builtIn.stdout)).toMatchObject({ head: 'm3' });
    const folder = inCwd('--head', './m3');
    expect(folder.status).toBe(1);
    expect(folder.stderr).toMatch(/--head \.\/m3: a trained head folder holds head\.json; none there/);
  });
});
