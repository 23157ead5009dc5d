/**
 * `encode --out` under faults, in process with an injected writer (portable: no tmpfs or root needed):
 * a disk that fills mid-write, an error before any line, and what --resume then makes of the part file.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { run } from '../../src/cli/encode.js';
import { openFile, type OpenFile } from '../../src/cli/part-file.js';
import { checkpointDir } from '../helpers/fixtures.js';

const MODEL = checkpointDir('tiny-m3');
const tmp = () => mkdtempSync(join(tmpdir(), 'bge-m3-faults-'));

/** A stream that keeps what is written to it. */
function sink() {
  let text = '';
  const stream = new Writable({ write(chunk, _enc, done) { text += String(chunk); done(); } });
  return { stream, text: () => text };
}

async function encode(args: string[], openFile?: OpenFile) {
  const [out, err] = [sink(), sink()];
  const code = await run(['--model', MODEL, '--batch-size', '16', '--dense', '--sparse', ...args], { stdout: out.stream, stderr: err.stream, openFile });
  return { code, stdout: out.text(), stderr: err.text() };
}

/** Files that write normally until `budget` bytes are used, then write what fits and fail with ENOSPC. */
function diskWith(budget: number): OpenFile {
  let used = 0;
  return async (path, flags) => {
    const real = await openFile(path, flags);
    return {
      ...real,
      async write(text) {
        const bytes = Buffer.from(text);
        const fits = Math.max(0, Math.min(bytes.length, budget - used));
        await appendFile(path, bytes.subarray(0, fits));
        used += fits;
        if (fits < bytes.length) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      },
    };
  };
}

describe('encode --out with a full disk', () => {
  // 70 inputs: one full chunk of 64 and a short one.
  const records = Array.from({ length: 70 }, (_, i) => ({ id: `r${i}`, text: `line ${i} ${'lorem ipsum '.repeat(i % 5)}` }));
  let input: string;
  let reference: string;
  beforeAll(async () => {
    input = join(tmp(), 'in.jsonl');
    writeFileSync(input, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const r = await encode(['--input', input]);
    expect(r.code, r.stderr).toBe(0);
    reference = r.stdout;
    expect(reference.split('\n').length).toBe(71);
  });

  it('leaves nothing under the final name, keeps the complete lines in .part, and --resume finishes byte for byte', async () => {
    const out = join(tmp(), 'out.jsonl');
    const firstChunk = reference.split('\n').slice(0, 64).join('\n').length + 1;
    const r = await encode(['--input', input, '--out', out], diskWith(firstChunk + 1000)); // fills mid-line in the 2nd chunk
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/out\.jsonl\.part: cannot write \(ENOSPC: no space left on device\)/);
    expect(r.stderr).toMatch(/64 of 70 lines are in .*out\.jsonl\.part: rerun the same command with --resume/);
    expect(existsSync(out)).toBe(false);
    const part = readFileSync(`${out}.part`, 'utf8');
    expect(part.length).toBe(firstChunk + 1000);
    expect(part.endsWith('\n')).toBe(false); // the cut-off line a full disk leaves

    const again = await encode(['--input', input, '--out', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/out\.jsonl\.part holds the lines of an unfinished run: pass --resume/);

    const resumed = await encode(['--input', input, '--out', out, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming .*out\.jsonl\.part after line 64 of 70/);
    expect(readFileSync(out, 'utf8')).toBe(reference);
    expect(existsSync(`${out}.part`)).toBe(false);
  });

  it('a full disk before the first line is complete removes the part file (nothing to resume)', async () => {
    const out = join(tmp(), 'out.jsonl');
    const r = await encode(['--input', input, '--out', out], diskWith(10));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ENOSPC/);
    expect(r.stderr).not.toMatch(/--resume/);
    expect(existsSync(out) || existsSync(`${out}.part`)).toBe(false);
  });

  it('a cut-off line inside the first chunk is dropped and the whole chunk recomputed', async () => {
    const out = join(tmp(), 'out.jsonl');
    writeFileSync(`${out}.part`, reference.slice(0, reference.indexOf('\n', 5000) + 20)); // some lines and a cut one
    const r = await encode(['--input', input, '--out', out, '--resume']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/after line 0 of 70/);
    expect(readFileSync(out, 'utf8')).toBe(reference);
  });

  it('--resume refuses a part file that is not this command\'s, naming the line, and leaves it as it was', async () => {
    const lines = reference.split('\n').slice(0, 64);
    const edit = (i: number, f: (o: Record<string, unknown>) => void) => {
      const copy = [...lines];
      const o = JSON.parse(copy[i]!);
      f(o);
      copy[i] = JSON.stringify(o);
      return copy.join('\n') + '\n';
    };
    const bad: Array<[string, string, RegExp]> = [
      ['another input', edit(3, (o) => { o.id = 'other'; }), /out\.jsonl\.part:4: id "other", but input 4 has id "r3"/],
      ['other outputs', edit(0, (o) => { delete o.lexical_weights; }), /:1: fields id,input_ids,dense, but this command writes id,input_ids,dense,lexical_weights/],
      ['other token ids', edit(5, (o) => { (o.input_ids as number[])[1] = 7; }), /:6: input_ids differ/],
      ['other vectors', edit(63, (o) => { (o.dense as number[])[0] = 0.5; }), /:64: differs from what this command computes/],
      ['a broken line', lines.join('\n').replace(lines[2]!, '{"id": "r2", "inp') + '\n', /:3: not a complete JSON line/],
      ['too many lines', reference + reference.split('\n')[0] + '\n', /:71: more lines than the 70 inputs/],
    ];
    for (const [what, content, msg] of bad) {
      const out = join(tmp(), 'out.jsonl');
      writeFileSync(`${out}.part`, content);
      const r = await encode(['--input', input, '--out', out, '--resume']);
      expect(r.code, what).toBe(1);
      expect(r.stderr, what).toMatch(msg);
      expect(r.stderr, what).toMatch(/cannot resume: .*pass --force instead of --resume to start over/);
      expect(readFileSync(`${out}.part`, 'utf8'), what).toBe(content);
      expect(existsSync(out), what).toBe(false);
    }
  });
});
