/**
 * The built `bge-m3 encode` binary when runs end early or the model sets the limits: Ctrl-C (SIGINT to a
 * child process) then --resume gives the uninterrupted output byte for byte; a failed load or a bad flag
 * leaves no file; a short position table and a mismatched vocabulary are reported with their numbers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureRandomCheckpoint, type RandomModelSize } from '../../src/bench/random-checkpoint.js';
import { M3Tokenizer } from '../../src/tokenizer.js';
import { checkpointDir } from '../helpers/fixtures.js';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli', 'main.js');
const MODEL = checkpointDir('tiny-m3');
const root = mkdtempSync(join(tmpdir(), 'bge-m3-interrupt-'));
let dirs = 0;
const tmp = () => mkdtempSync(join(root, `${dirs++}-`));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const countLines = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').length - 1 : 0);

describe('encode --out and Ctrl-C', () => {
  // 150 inputs: two chunks of 64 and one of 22; batch size 4 keeps each chunk a few seconds long.
  const records = Array.from({ length: 150 }, (_, i) => ({ id: i % 7 === 0 ? i : `t${i}`, text: `text ${i}: ${'the cat sat '.repeat(i % 6)}` }));
  let input: string;
  let args: string[];
  beforeAll(() => {
    input = join(tmp(), 'in.jsonl');
    writeFileSync(input, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    args = ['encode', '--model', MODEL, '--input', input, '--batch-size', '4'];
  });

  it('stops after the batch on SIGINT, keeps the finished lines in .part, and --resume equals an uninterrupted run', async () => {
    const out = join(tmp(), 'out.jsonl');
    const child = spawn(process.execPath, [BIN, ...args, '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += String(d); });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Interrupt once the first chunk is on disk, while the second is being computed.
    for (let waited = 0; countLines(`${out}.part`) < 64; waited += 50) {
      if (waited > 100_000 || child.exitCode !== null) throw new Error(`the run ended or stalled before its first chunk: ${stderr}`);
      await sleep(50);
    }
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    const m = /interrupted; (\d+) of 150 lines are in (.*): rerun the same command with --resume to continue/.exec(stderr);
    expect(m, stderr).not.toBeNull();
    const kept = Number(m![1]);
    expect(m![2]).toBe(`${out}.part`);
    expect([64, 128]).toContain(kept); // whole chunks only
    expect(existsSync(out)).toBe(false);
    const part = readFileSync(`${out}.part`, 'utf8');
    expect(part.endsWith('\n')).toBe(true);
    expect(part.split('\n').slice(0, -1).map((l) => JSON.parse(l).id)).toEqual(records.slice(0, kept).map((r) => r.id));

    const resumed = cli([...args, '--out', out, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`resuming .* after line ${kept} of 150`));
    const uninterrupted = cli(args);
    expect(uninterrupted.code, uninterrupted.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(uninterrupted.stdout);
    expect(existsSync(`${out}.part`)).toBe(false);
  });

  const early: Array<[string, (out: string) => string[], RegExp]> = [
    ['a model that fails to load', (out) => ['encode', '--model', join(root, 'no-such-model'), '--out', out, 'x'], /no-such-model/],
    ['a --max-length over the model limit', (out) => ['encode', '--model', MODEL, '--max-length', '9000', '--out', out, 'x'], /--max-length 9000 is more than this model allows/],
    ['a bad --max-length', (out) => ['encode', '--model', MODEL, '--max-length', 'ten', '--out', out, 'x'], /--max-length must be an integer/],
    ['--resume without --out', () => ['encode', '--model', MODEL, '--resume', 'x'], /--resume continues an --out FILE/],
  ];
  it.each(early)('%s leaves no file behind', (what, argv, msg) => {
    const out = join(tmp(), 'out.jsonl');
    const r = cli(argv(out));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(msg);
    expect(existsSync(out) || existsSync(`${out}.part`)).toBe(false);
    if (what === early[0]![0]) { // so a rerun is not refused
      const again = cli(['encode', '--model', MODEL, '--out', out, 'x']);
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(readFileSync(out, 'utf8')).id).toBe(0);
    }
  });

  it('--resume of a finished run says there is nothing to resume and keeps the file', () => {
    const out = join(tmp(), 'out.jsonl');
    writeFileSync(out, 'done\n');
    const r = cli(['encode', '--model', MODEL, '--out', out, '--resume', 'x']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/out\.jsonl exists \(a finished run\): nothing to resume/);
    expect(readFileSync(out, 'utf8')).toBe('done\n');
  });
});

describe('limits from the model, through the CLI', () => {
  const SMALL: RandomModelSize = { hidden: 32, layers: 1, heads: 4, intermediate: 64, vocab: 8002, positions: 34, colbertDim: 32 };
  const LONG = 'the quick brown fox jumps over the lazy dog '.repeat(20);

  it('a 34-row position table: encode and score work without flags; a larger flag names itself and both numbers', async () => {
    const { dir } = await ensureRandomCheckpoint(join(tmp(), 'short'), SMALL);
    const r = cli(['encode', '--model', dir, '--dense', LONG]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).input_ids).toHaveLength(32);
    const bad = cli(['encode', '--model', dir, '--max-length', '100', LONG]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--max-length 100 is more than this model allows: its position table holds 32 tokens/);
    const q = join(tmp(), 'q.jsonl');
    writeFileSync(q, `${JSON.stringify({ id: 'a', text: LONG })}\n`);
    const s = cli(['score', '--model', dir, '--queries', q, '--passages', q]);
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout).dense[0][0]).toBeCloseTo(1, 5);
  });

  it('a config.json vocab_size below the tokenizer\'s is refused at load, naming both numbers', async () => {
    const { dir } = await ensureRandomCheckpoint(join(tmp(), 'v5000'), { ...SMALL, vocab: 5000 });
    const r = cli(['encode', '--model', dir, 'hello']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/config\.json: vocab_size is 5000 but the tokenizer has 8002 ids/);
    expect(r.stderr).not.toMatch(/GatherV2/);
  });
});

describe('careless input through the CLI', () => {
  it('a BOM is accepted and invalid UTF-8 is named in a warning, the text encoded with U+FFFD', async () => {
    const input = join(tmp(), 'in.jsonl');
    writeFileSync(input, Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"id":"a","text":"What is BGE M3?"}\n{"id":"b","text":"caf'),
      Buffer.from([0xe9]), Buffer.from('"}\n'),
    ]));
    const r = cli(['encode', '--model', MODEL, '--sparse', '--input', input]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: .*in\.jsonl:2: invalid UTF-8; the bad bytes were read as U\+FFFD/);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.id)).toEqual(['a', 'b']);
    const tokenizer = await M3Tokenizer.fromDir(MODEL);
    expect(lines.map((l) => l.input_ids)).toEqual(['What is BGE M3?', 'caf\ufffd'].map((t) => tokenizer.tokenize(t).inputIds));
  });
});
