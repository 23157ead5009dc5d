/**
 * The flags a new user reaches for, the same on every command: `--input -` reads standard input,
 * `--out` names where a command writes (old spellings still work, with a warning), `--json` is taken
 * by every command that prints results, `bge-m3 --version`.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkpointDir } from '../helpers/fixtures.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'dist', 'cli', 'main.js');
const MODEL = checkpointDir('sharp-m3');
const tmp = () => mkdtempSync(join(tmpdir(), 'bge-m3-flags-'));

function cli(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', input, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Many texts (several chunks of 64 lines, several batches), of equal and unequal lengths, one with a BOM-free CRLF line.
const texts = Array.from({ length: 150 }, (_, i) => (i % 3 === 0 ? 'same length text' : `text ${i} ${'word '.repeat(i % 17)}`));
const jsonl = texts.map((text, i) => JSON.stringify({ id: `t${i}`, text })).join('\n') + '\r\n';

describe('encode --input - (standard input)', () => {
  it('gives the same lines as --input FILE, in input order', () => {
    const file = join(tmp(), 'in.jsonl');
    writeFileSync(file, jsonl);
    const fromFile = cli(['encode', '--model', MODEL, '--sparse', '--dense', '--input', file, '--batch-size', '8']);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    const fromStdin = cli(['encode', '--model', MODEL, '--sparse', '--dense', '--input', '-', '--batch-size', '8'], jsonl);
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    expect(fromStdin.stdout).toBe(fromFile.stdout);
    expect(fromStdin.stdout.trim().split('\n').map((l) => JSON.parse(l).id)).toEqual(texts.map((_, i) => `t${i}`));
  });

  it('names standard input in errors about its lines, and an empty input is nothing to encode', () => {
    const bad = cli(['encode', '--model', MODEL, '--input', '-'], '{"id": 1, "text": "ok"}\n{"id": 2, "text": 3}\n');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/<stdin>:2: "text" must be a string/);
    expect(bad.stdout).toBe('');
    const empty = cli(['encode', '--model', MODEL, '--input', '-'], '');
    expect(empty.code, empty.stderr).toBe(0);
    expect(empty.stdout).toBe('');
  });
});

describe('encode --out', () => {
  it('writes the file; --output, its old name, still works with a deprecation warning; both is a usage error', () => {
    const dir = tmp();
    const a = cli(['encode', '--model', MODEL, '--out', join(dir, 'a.jsonl'), 'What is BGE M3?', 'Defination of BM25']);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stderr).toBe('');
    const b = cli(['encode', '--model', MODEL, '--output', join(dir, 'b.jsonl'), 'What is BGE M3?', 'Defination of BM25']);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/warning: --output is deprecated: use --out/);
    expect(readFileSync(join(dir, 'b.jsonl'), 'utf8')).toBe(readFileSync(join(dir, 'a.jsonl'), 'utf8'));
    const both = cli(['encode', '--model', MODEL, '--out', join(dir, 'c.jsonl'), '--output', join(dir, 'd.jsonl'), 'x']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/give --out only \(--output is its old name\)/);
  });
});

describe('score', () => {
  const queries = ['What is BGE M3?', 'Defination of BM25'].map((text, i) => JSON.stringify({ id: `q${i}`, text })).join('\n');
  const passages = ['BGE M3 is an embedding model.', 'BM25 is a bag-of-words retrieval function.', 'Paris'].map((text, i) => JSON.stringify({ id: `p${i}`, text })).join('\n');

  it('takes --json, and reads --queries or --passages from standard input (-), not both', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'q.jsonl'), queries);
    writeFileSync(join(dir, 'p.jsonl'), passages);
    const plain = cli(['score', '--model', MODEL, '--queries', join(dir, 'q.jsonl'), '--passages', join(dir, 'p.jsonl')]);
    expect(plain.code, plain.stderr).toBe(0);
    const json = cli(['score', '--model', MODEL, '--queries', join(dir, 'q.jsonl'), '--passages', join(dir, 'p.jsonl'), '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(json.stdout).toBe(plain.stdout);
    const m = JSON.parse(json.stdout);
    expect(m.passages).toEqual(['p0', 'p1', 'p2']);
    expect(m.dense).toHaveLength(2);
    const stdin = cli(['score', '--model', MODEL, '--queries', '-', '--passages', join(dir, 'p.jsonl'), '--json'], queries);
    expect(stdin.code, stdin.stderr).toBe(0);
    expect(stdin.stdout).toBe(plain.stdout);
    const both = cli(['score', '--model', MODEL, '--queries', '-', '--passages', '-'], queries);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/cannot both read standard input/);
  });
});

describe('every command', () => {
  it('bge-m3 --version and -V print the version of package.json', () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = cli([flag]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${version}\n`);
    }
  });

  it('names its output --out and takes --json where it prints results; no help mentions --output or --dir as current', () => {
    const help = (cmd: string[]) => {
      const r = cli([...cmd, '--help']);
      expect(r.code, `${cmd.join(' ')}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    for (const cmd of [['encode'], ['inspect'], ['download'], ['sparse', 'cache'], ['sparse', 'train']]) {
      expect(help(cmd), cmd.join(' ')).toMatch(/--out\b/);
    }
    for (const cmd of [['score'], ['bench'], ['sparse', 'eval'], ['sparse', 'lens'], ['sparse', 'cache'], ['sparse', 'train']]) {
      expect(help(cmd), cmd.join(' ')).toMatch(/--json\b/);
    }
    for (const cmd of [['encode'], ['download']]) {
      expect(help(cmd).split('\n')[0], cmd.join(' ')).not.toMatch(/--output\b|--dir\b/);
    }
    // the commands that print JSON only take --json too (parsed as a known flag, not refused as unknown)
    for (const cmd of [['sparse', 'cache', 'merge'], ['sparse', 'cache'], ['sparse', 'train'], ['score']]) {
      const r = cli([...cmd, '--json']);
      expect(r.code, cmd.join(' ')).toBe(2);
      expect(r.stderr, cmd.join(' ')).not.toMatch(/Unknown option/i);
      expect(r.stderr, cmd.join(' ')).toMatch(/required|give the shard/);
    }
  });
});
