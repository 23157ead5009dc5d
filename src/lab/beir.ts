/**
 * A retrieval set in BEIR's layout:
 *
 *   DIR/corpus.jsonl        {"_id": "d1", "title": "…", "text": "…"}  (title optional)
 *   DIR/queries.jsonl       {"_id": "q1", "text": "…"}
 *   DIR/qrels/<split>.tsv   query-id <TAB> corpus-id <TAB> score   (a header line first)
 *
 * Read strictly: every bad line is an error naming its file and line. Rules chosen here:
 * - blank lines are skipped; a UTF-8 byte-order mark at the start of a file is accepted; invalid UTF-8 is
 *   read as U+FFFD and each such line is named in a warning;
 * - `_id` and `text` must be strings, `_id` non-empty; `title` may be absent or null (read as "");
 *   other fields (BEIR's `metadata`) are ignored; a repeated `_id` is an error;
 * - a qrels line has exactly 3 tab-separated fields and an integer score; the header
 *   `query-id corpus-id score` is required as the first line (BEIR's loader skips line 1 blindly,
 *   so a file without it would lose a judgment there); a repeated (query, document) pair is an error;
 * - a qrels query id that `queries.jsonl` lacks is an error (the query has no text to run);
 * - a qrels corpus id that `corpus.jsonl` lacks is a warning and the judgment is kept: as in
 *   trec_eval, a judged relevant document that cannot be retrieved still counts against recall and
 *   nDCG. Queries without any qrels line are kept in `queries` but are not evaluated.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readLines, warnInvalidUtf8 } from '../utf8-lines.js';

export interface BeirDoc {
  readonly title: string;
  readonly text: string;
}

export interface BeirSet {
  /** Document id -> title and text, in file order. */
  corpus: Map<string, BeirDoc>;
  /** Query id -> text, in file order. */
  queries: Map<string, string>;
  /** Query id -> (document id -> relevance grade), in file order. */
  qrels: Map<string, Map<string, number>>;
}

export interface ReadBeirOptions {
  /**
   * Called with non-fatal findings (qrels naming documents the corpus lacks, lines with invalid UTF-8);
   * default: console.warn.
   */
  onWarning?: (message: string) => void;
}

/** A document's text as BEIR's models see it: `title + " " + text` when the title is non-empty. */
export function documentText(doc: BeirDoc): string {
  return doc.title !== '' ? `${doc.title} ${doc.text}` : doc.text;
}

/**
 * Non-blank lines of a UTF-8 file with their 1-based line numbers (a leading BOM is dropped). Invalid UTF-8
 * is read as U+FFFD and named in a warning, file and line (an id read wrongly would move a judgment).
 */
async function* lines(path: string, onWarning: (message: string) => void): AsyncGenerator<{ line: string; n: number }> {
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  const invalid: number[] = [];
  for await (const [n, line] of readLines(path, (l) => invalid.push(l))) {
    if (line.trim() === '') continue;
    yield { line, n };
  }
  warnInvalidUtf8(path, invalid, onWarning);
}

function warner(opts: ReadBeirOptions): (message: string) => void {
  return opts.onWarning ?? ((m: string) => console.warn(m));
}

function describe(v: unknown): string {
  return v === undefined ? 'nothing' : v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/** Reads a JSONL file of `{"_id", "text", …}` objects, calling `take` for each. */
async function readJsonl(
  path: string,
  onWarning: (message: string) => void,
  take: (obj: Record<string, unknown>, id: string, where: string) => void,
): Promise<void> {
  const seen = new Set<string>();
  for await (const { line, n } of lines(path, onWarning)) {
    const where = `${path}:${n}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new Error(`${where}: malformed JSON (${(e as Error).message})`);
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new Error(`${where}: expected a JSON object, got ${describe(obj)}`);
    const rec = obj as Record<string, unknown>;
    if (typeof rec._id !== 'string' || rec._id === '') throw new Error(`${where}: "_id" must be a non-empty string, got ${rec._id === '' ? 'an empty string' : describe(rec._id)}`);
    if (typeof rec.text !== 'string') throw new Error(`${where}: "text" must be a string, got ${describe(rec.text)}`);
    if (seen.has(rec._id)) throw new Error(`${where}: duplicate _id ${JSON.stringify(rec._id)}`);
    seen.add(rec._id);
    take(rec, rec._id, where);
  }
}

const HEADER = ['query-id', 'corpus-id', 'score'];

/** Reads `DIR/corpus.jsonl` (no qrels needed: for passes over the corpus alone). */
export async function readCorpus(dir: string, opts: ReadBeirOptions = {}): Promise<Map<string, BeirDoc>> {
  const corpus = new Map<string, BeirDoc>();
  await readJsonl(join(dir, 'corpus.jsonl'), warner(opts), (rec, id, where) => {
    const title = rec.title ?? '';
    if (typeof title !== 'string') throw new Error(`${where}: "title" must be a string, got ${describe(title)}`);
    corpus.set(id, { title, text: rec.text as string });
  });
  return corpus;
}

/** Reads `DIR/queries.jsonl`. */
export async function readQueries(dir: string, opts: ReadBeirOptions = {}): Promise<Map<string, string>> {
  const queries = new Map<string, string>();
  await readJsonl(join(dir, 'queries.jsonl'), warner(opts), (rec, id) => queries.set(id, rec.text as string));
  return queries;
}

/** Reads `DIR/corpus.jsonl`, `DIR/queries.jsonl` and `DIR/qrels/<split>.tsv`. */
export async function readBeir(dir: string, split: string, opts: ReadBeirOptions = {}): Promise<BeirSet> {
  if (!/^[\w.-]+$/.test(split)) throw new Error(`split must be a plain name such as test, dev or train, got ${JSON.stringify(split)}`);
  const warn = warner(opts);
  const corpus = await readCorpus(dir, opts);
  const queries = await readQueries(dir, opts);

  const qrelsPath = join(dir, 'qrels', `${split}.tsv`);
  const qrels = new Map<string, Map<string, number>>();
  const missingDocs: string[] = [];
  let first = true;
  for await (const { line, n } of lines(qrelsPath, warn)) {
    const where = `${qrelsPath}:${n}`;
    const fields = line.split('\t');
    if (first) {
      first = false;
      if (fields.length !== 3 || fields.some((f, i) => f.trim().toLowerCase() !== HEADER[i])) {
        throw new Error(`${where}: expected the header line "query-id<TAB>corpus-id<TAB>score", got ${JSON.stringify(line)}`);
      }
      continue;
    }
    if (fields.length !== 3) throw new Error(`${where}: expected 3 tab-separated fields (query-id, corpus-id, score), got ${fields.length}`);
    const [qid, did, score] = fields.map((f) => f.trim()) as [string, string, string];
    if (qid === '' || did === '') throw new Error(`${where}: empty ${qid === '' ? 'query-id' : 'corpus-id'}`);
    if (!/^[+-]?\d+$/.test(score)) throw new Error(`${where}: score must be an integer, got ${JSON.stringify(score)}`);
    if (!queries.has(qid)) throw new Error(`${where}: query-id ${JSON.stringify(qid)} is not in ${join(dir, 'queries.jsonl')}`);
    if (!corpus.has(did)) missingDocs.push(`${did} (line ${n})`);
    let judged = qrels.get(qid);
    if (!judged) qrels.set(qid, (judged = new Map()));
    if (judged.has(did)) throw new Error(`${where}: query ${JSON.stringify(qid)} judges document ${JSON.stringify(did)} twice`);
    judged.set(did, Number(score));
  }
  if (first) throw new Error(`${qrelsPath}: empty file (expected a header line and judgments)`);
  if (missingDocs.length > 0) {
    warn(`${qrelsPath}: ${missingDocs.length} judgments name documents not in corpus.jsonl (kept: they count as unretrieved): ${missingDocs.slice(0, 5).join(', ')}${missingDocs.length > 5 ? ', …' : ''}`);
  }
  return { corpus, queries, qrels };
}
