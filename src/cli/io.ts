/** What the CLI commands share: their streams, argument parsing and input/output files. */
import { existsSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BACKENDS, type BackendName } from '../backend.js';
import { readLines, warnInvalidUtf8 } from '../utf8-lines.js';

export interface CliIO {
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
}

/** An error whose message is shown to the user as is; `usage` errors exit 2, others 1. */
export class CliError extends Error {
  constructor(message: string, readonly usage = false) {
    super(message);
    this.name = 'CliError';
  }
}

/** Runs a check whose error message is for the user as is (a CliError, exit 1). */
export function cliCheck(check: () => void): void {
  try {
    check();
  } catch (e) {
    throw e instanceof CliError ? e : new CliError((e as Error).message);
  }
}

/** node:util parseArgs, strict; an unknown or malformed flag becomes a usage CliError naming it. */
export function parseCli<const T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[], options: T, allowPositionals: boolean,
): ReturnType<typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: boolean }>> {
  try {
    return parseArgs({ args: argv, options, strict: true as const, allowPositionals });
  } catch (e) {
    throw new CliError((e as Error).message, true);
  }
}

/** What `--input -` (and the like) reads: standard input, named `<stdin>` in messages. */
export const STDIN = '-';
const label = (path: string): string => (path === STDIN ? '<stdin>' : path);

/**
 * A flag renamed so that every command spells one meaning the same way (e.g. `--output` → `--out`):
 * the old spelling still works, with a deprecation warning; giving both is a usage error.
 */
export function renamedFlag<V>(newName: string, newValue: V | undefined, oldName: string, oldValue: V | undefined, warn: (message: string) => void): V | undefined {
  if (oldValue === undefined) return newValue;
  if (newValue !== undefined) throw new CliError(`give --${newName} only (--${oldName} is its old name)`, true);
  warn(`--${oldName} is deprecated: use --${newName} (the name every bge-m3 command uses for it)`);
  return oldValue;
}

export function intFlag(value: string | undefined, flag: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim()) || Number(value) < min) throw new CliError(`--${flag} must be an integer >= ${min}, got '${value}'`, true);
  return Number(value);
}

/** A finite number flag; `sign` also refuses negatives ('non-negative') or zero too ('positive'). */
export function numberFlag(value: string | undefined, flag: string, sign?: 'non-negative' | 'positive'): number | undefined {
  if (value === undefined) return undefined;
  const x = Number(value);
  if (value.trim() === '' || !Number.isFinite(x) || (sign !== undefined && x < 0) || (sign === 'positive' && x === 0)) {
    throw new CliError(`--${flag} must be a ${sign !== undefined ? `${sign} ` : ''}number, got '${value}'`, true);
  }
  return x;
}

/**
 * A token-length flag checked against the model's own limit (its position table): the flag's value, or
 * `fallback` clamped to that limit when the flag is not given.
 */
export function lengthFlag(value: number | undefined, flag: string, model: { readonly maxLength: number }, fallback: number): number {
  if (value === undefined) return Math.min(fallback, model.maxLength);
  if (value > model.maxLength) {
    throw new CliError(`--${flag} ${value} is more than this model allows: its position table holds ${model.maxLength} tokens (config.json max_position_embeddings − pad_token_id − 1)`);
  }
  return value;
}

export function backendFlag(value: string | undefined): BackendName | undefined {
  if (value === undefined) return undefined;
  if (!(BACKENDS as readonly string[]).includes(value)) throw new CliError(`--backend must be one of ${BACKENDS.join(', ')}, got '${value}'`, true);
  return value as BackendName;
}

export interface InputRecord {
  readonly id: unknown;
  readonly text: string;
}

/**
 * Reads `{"id": ..., "text": "..."}` lines from a file, or from standard input when `path` is "-". A line that is not a JSON object with a string `text` is
 * an error naming the file and line; blank lines are skipped; a missing id becomes the line number.
 * Lines with invalid UTF-8 are read with U+FFFD in place of the bad bytes and named in a warning.
 */
export async function readJsonl(path: string, onWarning: (message: string) => void = () => {}): Promise<InputRecord[]> {
  if (path !== STDIN && !existsSync(path)) throw new CliError(`${path}: no such file (give - to read standard input)`);
  const records: InputRecord[] = [];
  const name = label(path);
  const invalid: number[] = [];
  try {
    for await (const [n, line] of readLines(path, (l) => invalid.push(l))) {
      if (line.trim() === '') continue;
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch (e) {
        throw new CliError(`${name}:${n}: malformed JSON (${(e as Error).message})`);
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new CliError(`${name}:${n}: expected a JSON object {"id": ..., "text": "..."}`);
      const { id, text } = obj as Record<string, unknown>;
      if (typeof text !== 'string') {
        throw new CliError(`${name}:${n}: "text" must be a string, got ${text === undefined ? 'nothing' : text === null ? 'null' : typeof text}`);
      }
      records.push({ id: id === undefined ? n : id, text });
    }
  } catch (e) {
    if (e instanceof CliError) throw e;
    const msg = (e as Error).message;
    throw new CliError(msg.startsWith(`${name}: `) ? msg : `${name}: cannot read (${(e as NodeJS.ErrnoException).code ?? msg})`);
  }
  warnInvalidUtf8(name, invalid, onWarning);
  return records;
}

/** Runs a command body: prints CliError messages (and other errors with their stack) and returns the exit code. */
export async function runCommand(name: string, usage: string, io: CliIO, body: () => Promise<number | void>): Promise<number> {
  const stderr = io.stderr ?? process.stderr;
  try {
    return (await body()) ?? 0;
  } catch (e) {
    if (e instanceof CliError) {
      stderr.write(`bge-m3 ${name}: ${e.message}\n${e.usage ? `\n${usage}` : ''}`);
      return e.usage ? 2 : 1;
    }
    const err = e as Error;
    // Library errors (bad weights, config, arguments) carry their own clear messages.
    stderr.write(`bge-m3 ${name}: ${err?.message ?? String(e)}\n`);
    if (process.env.BGE_M3_DEBUG) stderr.write(`${err?.stack ?? ''}\n`);
    return 1;
  }
}
