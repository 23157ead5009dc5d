/** What the CLI commands share: their streams, argument parsing and input/output files. */
import { createReadStream, existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BACKENDS, type BackendName } from '../backend.js';

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

export function intFlag(value: string | undefined, flag: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim()) || Number(value) < min) throw new CliError(`--${flag} must be an integer >= ${min}, got '${value}'`, true);
  return Number(value);
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
 * Reads `{"id": ..., "text": "..."}` lines. A line that is not a JSON object with a string `text` is
 * an error naming the file and line; blank lines are skipped; a missing id becomes the line number.
 */
export async function readJsonl(path: string): Promise<InputRecord[]> {
  if (!existsSync(path)) throw new CliError(`${path}: no such file`);
  const records: InputRecord[] = [];
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (line.trim() === '') continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new CliError(`${path}:${n}: malformed JSON (${(e as Error).message})`);
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new CliError(`${path}:${n}: expected a JSON object {"id": ..., "text": "..."}`);
    const { id, text } = obj as Record<string, unknown>;
    if (typeof text !== 'string') {
      throw new CliError(`${path}:${n}: "text" must be a string, got ${text === undefined ? 'nothing' : text === null ? 'null' : typeof text}`);
    }
    records.push({ id: id === undefined ? n : id, text });
  }
  return records;
}

/** Opens an output file, refusing to replace an existing one unless `force`. */
export async function openOutput(path: string, force: boolean) {
  try {
    return await open(path, force ? 'w' : 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new CliError(`${path} exists; pass --force to replace it`);
    throw new CliError(`${path}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
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
