/**
 * TREC run files, `qid Q0 docid rank score tag` one hit a line, which trec_eval, pytrec_eval and ranx
 * read. Hits are written in trec_eval's order (see `rankHits`) with ranks from 1, and scores in
 * JavaScript's shortest round-trip form, so the file scores exactly as the lab did (ties included).
 */
import { createReadStream, existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { writeFileAtomic } from '../atomic-write.js';
import { rankHits, type Hit, type Run } from './metrics.js';

function checkField(value: string, what: string): void {
  if (value === '' || /\s/.test(value)) throw new Error(`run file: ${what} ${JSON.stringify(value)} cannot be written (empty or containing whitespace)`);
}

/**
 * Writes `run` to `path`: to a temporary file beside it, renamed into place when complete, so an
 * interrupted write never leaves a partial file under the final name, and the temporary file is removed
 * on a failure or a signal. An existing `path` is refused unless `force`.
 */
export async function writeRunFile(path: string, run: Run, tag: string, opts: { force?: boolean } = {}): Promise<void> {
  checkField(tag, 'tag');
  if (!opts.force && existsSync(path)) throw new Error(`${path} exists; pass --force to replace it`);
  const write = async (tmp: string): Promise<void> => {
    const fh = await open(tmp, 'wx');
    try {
      for (const [qid, hits] of run) {
        checkField(qid, 'query id');
        const lines = rankHits(hits).map((h, i) => {
          checkField(h.id, 'document id');
          if (!Number.isFinite(h.score)) throw new Error(`run file: query ${qid} document ${h.id} has score ${h.score}`);
          return `${qid} Q0 ${h.id} ${i + 1} ${h.score} ${tag}\n`;
        });
        await fh.write(lines.join(''));
      }
    } catch (e) {
      await fh.close().catch(() => {}); // the write's error is the one to report
      throw e;
    }
    await fh.close();
  };
  try {
    await writeFileAtomic(path, write, { replace: opts.force === true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`${path} exists; pass --force to replace it`);
    throw e;
  }
}

/** Reads a run file (whitespace-separated, 6 fields a line); a bad line is an error naming file and line. */
export async function readRunFile(path: string): Promise<Map<string, Hit[]>> {
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  const run = new Map<string, Hit[]>();
  const seen = new Set<string>();
  const rl = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let n = 0;
  for await (const line of rl) {
    n++;
    if (line.trim() === '') continue;
    const f = line.trim().split(/\s+/);
    if (f.length !== 6) throw new Error(`${path}:${n}: expected 6 fields (qid Q0 docid rank score tag), got ${f.length}`);
    const [qid, , id, rank, score] = f as [string, string, string, string, string];
    if (!/^\d+$/.test(rank)) throw new Error(`${path}:${n}: rank must be a non-negative integer, got ${JSON.stringify(rank)}`);
    const s = Number(score);
    if (score.trim() === '' || !Number.isFinite(s)) throw new Error(`${path}:${n}: score must be a finite number, got ${JSON.stringify(score)}`);
    const key = `${qid}\u0000${id}`;
    if (seen.has(key)) throw new Error(`${path}:${n}: query ${qid} lists document ${id} twice`);
    seen.add(key);
    let hits = run.get(qid);
    if (!hits) run.set(qid, (hits = []));
    hits.push({ id, score: s });
  }
  return run;
}
