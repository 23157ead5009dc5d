/** BEIR layout reader: the happy path, BEIR's title convention, and an error naming file and line for every bad line. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { documentText, readBeir } from '../../src/lab/beir.js';

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

const CORPUS = [
  '\uFEFF{"_id": "d1", "title": "Paris", "text": "capital of France", "metadata": {}}',
  '',
  '{"_id": "d2", "text": "no title here"}',
  '{"_id": "d3", "title": null, "text": "null title"}',
].join('\n');
const QUERIES = '{"_id": "q1", "text": "capital?"}\r\n{"_id": "q2", "text": "unjudged"}\r\n';
const QRELS = 'query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\n\n';

function makeSet(files: Partial<Record<'corpus' | 'queries' | 'qrels', string | Buffer>>): string {
  const dir = mkdtempSync(join(tmpdir(), 'beir-'));
  roots.push(dir);
  mkdirSync(join(dir, 'qrels'));
  writeFileSync(join(dir, 'corpus.jsonl'), files.corpus ?? CORPUS);
  writeFileSync(join(dir, 'queries.jsonl'), files.queries ?? QUERIES);
  writeFileSync(join(dir, 'qrels', 'test.tsv'), files.qrels ?? QRELS);
  return dir;
}

describe('readBeir', () => {
  it('reads corpus, queries and qrels (BOM, CRLF, blank lines, null title, extra fields)', async () => {
    const set = await readBeir(makeSet({}), 'test');
    expect([...set.corpus.keys()]).toEqual(['d1', 'd2', 'd3']);
    expect(set.corpus.get('d1')).toEqual({ title: 'Paris', text: 'capital of France' });
    expect(set.corpus.get('d3')).toEqual({ title: '', text: 'null title' });
    expect([...set.queries]).toEqual([['q1', 'capital?'], ['q2', 'unjudged']]);
    expect([...set.qrels.keys()]).toEqual(['q1']);
    expect([...set.qrels.get('q1')!]).toEqual([['d1', 2], ['d2', 0]]);
  });

  it('joins title and text with one space only when the title is non-empty (BEIR)', () => {
    expect(documentText({ title: 'Paris', text: 'capital of France' })).toBe('Paris capital of France');
    expect(documentText({ title: '', text: 'no title' })).toBe('no title');
  });

  it('warns about (and keeps) judgments of documents the corpus lacks', async () => {
    const warnings: string[] = [];
    const set = await readBeir(makeSet({ qrels: `${QRELS}q1\tghost\t1\n` }), 'test', { onWarning: (w) => warnings.push(w) });
    expect(set.qrels.get('q1')!.get('ghost')).toBe(1);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/test\.tsv: 1 judgments name documents not in corpus\.jsonl.*ghost \(line 5\)/);
  });

  it('warns naming file and line for invalid UTF-8 (read as U+FFFD), in every file of the set', async () => {
    const warnings: string[] = [];
    const bytes = (...parts: Array<string | number[]>): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
    const dir = makeSet({
      corpus: bytes('{"_id": "d1", "text": "ok"}\n{"_id": "d2", "text": "caf', [0xe9], '"}\n{"_id": "d', [0xff], '", "text": "x"}\n'),
      queries: bytes('{"_id": "q1", "text": "', [0xc3, 0x28], '"}\n'),
      qrels: bytes('query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td', [0xff], '\t1\n'),
    });
    const set = await readBeir(dir, 'test', { onWarning: (w) => warnings.push(w) });
    expect(set.corpus.get('d2')!.text).toBe('caf\uFFFD');
    expect(warnings.filter((w) => /invalid UTF-8/.test(w))).toEqual([
      `${join(dir, 'corpus.jsonl')}:2: invalid UTF-8; the bad bytes were read as U+FFFD`,
      `${join(dir, 'corpus.jsonl')}:3: invalid UTF-8; the bad bytes were read as U+FFFD`,
      `${join(dir, 'queries.jsonl')}:1: invalid UTF-8; the bad bytes were read as U+FFFD`,
      `${join(dir, 'qrels', 'test.tsv')}:3: invalid UTF-8; the bad bytes were read as U+FFFD`,
    ]);
  });

  const bad: Array<[string, Partial<Record<'corpus' | 'queries' | 'qrels', string>>, RegExp]> = [
    ['malformed JSON', { corpus: '{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": ' }, /corpus\.jsonl:2: malformed JSON/],
    ['a non-object line', { queries: '["q1", "x"]' }, /queries\.jsonl:1: expected a JSON object, got an array/],
    ['a missing _id', { corpus: '{"text": "a"}' }, /corpus\.jsonl:1: "_id" must be a non-empty string, got nothing/],
    ['a numeric _id', { queries: '{"_id": 7, "text": "a"}' }, /queries\.jsonl:1: "_id" must be a non-empty string, got number/],
    ['an empty _id', { queries: '{"_id": "", "text": "a"}' }, /queries\.jsonl:1: "_id" must be a non-empty string, got an empty string/],
    ['a missing text', { corpus: '{"_id": "d1", "title": "t"}' }, /corpus\.jsonl:1: "text" must be a string, got nothing/],
    ['a non-string title', { corpus: '{"_id": "d1", "title": 3, "text": "a"}' }, /corpus\.jsonl:1: "title" must be a string, got number/],
    ['a duplicate id', { corpus: '{"_id": "d1", "text": "a"}\n\n{"_id": "d1", "text": "b"}' }, /corpus\.jsonl:3: duplicate _id "d1"/],
    ['a missing header', { qrels: 'q1\td1\t1\n' }, /test\.tsv:1: expected the header line/],
    ['two fields', { qrels: 'query-id\tcorpus-id\tscore\nq1\td1\n' }, /test\.tsv:2: expected 3 tab-separated fields.*got 2/],
    ['space-separated fields', { qrels: 'query-id\tcorpus-id\tscore\nq1 d1 1\n' }, /test\.tsv:2: expected 3 tab-separated fields/],
    ['a fractional score', { qrels: 'query-id\tcorpus-id\tscore\nq1\td1\t1.5\n' }, /test\.tsv:2: score must be an integer, got "1\.5"/],
    ['an unknown query', { qrels: 'query-id\tcorpus-id\tscore\nq1\td1\t1\nq9\td1\t1\n' }, /test\.tsv:3: query-id "q9" is not in .*queries\.jsonl/],
    ['a repeated judgment', { qrels: 'query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td1\t2\n' }, /test\.tsv:3: query "q1" judges document "d1" twice/],
    ['an empty qrels file', { qrels: '\n' }, /test\.tsv: empty file/],
  ];
  it.each(bad)('refuses %s, naming file and line', async (_, files, message) => {
    await expect(readBeir(makeSet(files), 'test')).rejects.toThrow(message);
  });

  it('names a missing file and refuses a split that is a path', async () => {
    const dir = makeSet({});
    await expect(readBeir(dir, 'dev')).rejects.toThrow(/qrels\/dev\.tsv: no such file/);
    await expect(readBeir(dir, '../test')).rejects.toThrow(/split must be a plain name/);
  });
});
