/**
 * One command skeleton (src/cli/command.ts): every command parses its one option table, answers
 * --help, and reports usage errors (exit 2, usage after the message) and a missing --model or a bad
 * --backend in the same words; and no command writes that preamble again (a second copy fails here).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli');

/** The command modules: every file exporting `run` but the dispatchers (main.ts, sparse.ts). */
const COMMANDS = readdirSync(CLI).filter((f) => f.endsWith('.ts') && f !== 'main.ts' && f !== 'sparse.ts'
  && /^export (async function|const) run\b/m.test(readFileSync(join(CLI, f), 'utf8')));

type Run = (argv: string[], io?: { stdout?: NodeJS.WritableStream; stderr?: NodeJS.WritableStream }) => Promise<number>;

function sink(): { stream: Writable; text: () => string } {
  let s = '';
  return { stream: new Writable({ write(chunk, _e, done) { s += String(chunk); done(); } }), text: () => s };
}

async function call(file: string, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const mod = (await import(join(CLI, file))) as { run: Run; USAGE: string };
  const [out, err] = [sink(), sink()];
  const code = await mod.run(argv, { stdout: out.stream, stderr: err.stream });
  return { code, out: out.text(), err: err.text() };
}

/** Commands that require --model, with the other flags they need to get as far as checking it. */
const NEEDS_MODEL: Record<string, string[]> = {
  'encode.ts': ['some text'],
  'score.ts': ['--queries', 'q.jsonl', '--passages', 'p.jsonl'],
  'inspect.ts': ['a query'],
  'sparse-eval.ts': ['--beir', 'set'],
  'sparse-cache.ts': ['--out', 'o', '--input', 'i.jsonl'],
  'sparse-train.ts': ['--beir', 'set', '--head', 'm3', '--out', 'o'],
  'sparse-lens.ts': ['a text'],
};

describe('the command skeleton', () => {
  it('finds the commands', () => {
    expect(COMMANDS.length).toBeGreaterThanOrEqual(11);
    for (const f of Object.keys(NEEDS_MODEL)) expect(COMMANDS).toContain(f);
  });

  it('every command is made with defineCommand, and none parses flags or catches its errors itself', () => {
    const own: string[] = [];
    for (const f of COMMANDS) {
      const src = readFileSync(join(CLI, f), 'utf8');
      if (!src.includes('defineCommand(')) own.push(`${f}: no defineCommand`);
      for (const word of ['parseArgs(', 'parseCli(', 'runCommand(', 'values.help', 'io.stdout ??', 'io.stderr ??', 'BgeM3.load(', 'backendFlag(']) {
        if (src.includes(word)) own.push(`${f}: ${word}`);
      }
    }
    expect(own).toEqual([]);
  });

  it('--help prints the usage on stdout and exits 0; an unknown flag is a usage error naming it, with the usage', async () => {
    for (const f of COMMANDS) {
      const { USAGE } = (await import(join(CLI, f))) as { USAGE: string };
      const help = await call(f, ['--help']);
      expect([f, help.code, help.out, help.err]).toEqual([f, 0, USAGE, '']);
      const bad = await call(f, ['--no-such-flag']);
      expect([f, bad.code]).toEqual([f, 2]);
      expect(bad.err).toContain('--no-such-flag');
      expect(bad.err.endsWith(`\n\n${USAGE}`)).toBe(true);
    }
  });

  it('a missing --model and a bad --backend read the same on every command that takes them', async () => {
    for (const [f, rest] of Object.entries(NEEDS_MODEL)) {
      const name = f.replace(/\.ts$/, '').replace('-', ' ');
      const none = await call(f, rest);
      expect([f, none.code, none.err.split('\n')[0]]).toEqual([f, 2, `bge-m3 ${name}: --model DIR is required`]);
      const blank = await call(f, ['--model', ' ', ...rest]);
      expect([f, blank.code, blank.err.split('\n')[0]]).toEqual([f, 2, `bge-m3 ${name}: --model DIR is required`]);
    }
    for (const f of COMMANDS.filter((c) => readFileSync(join(CLI, c), 'utf8').includes("backend: { type: 'string' }"))) {
      const r = await call(f, ['--model', 'no-such-dir', '--backend', 'nope', ...(NEEDS_MODEL[f] ?? [])]);
      expect([f, r.code]).toEqual([f, 2]);
      expect(r.err).toMatch(/--backend must be one of .*got 'nope'/);
    }
  });
});
