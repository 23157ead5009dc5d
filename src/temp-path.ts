/**
 * Temporary files and folders written beside an output and renamed into place when complete: nothing is
 * left behind when the write fails (a full disk, a bad value) or the process is stopped by a signal
 * (Ctrl-C, SIGTERM, SIGHUP), and a failed write names the file it was writing.
 */
import { accessSync, constants, existsSync, rmSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** Temporary paths being written now; removed if a signal stops the process. */
const live = new Set<string>();

/** Repairs to make if a signal stops the process now (e.g. put back an output moved aside). */
const repairs = new Set<() => void>();

function onSignal(signal: NodeJS.Signals): void {
  for (const repair of repairs) repair();
  repairs.clear();
  for (const p of live) rmSync(p, { recursive: true, force: true });
  live.clear();
  uninstall();
  // With no other listener, die of the signal as the default action would (exit status 128 + n).
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function install(): void {
  for (const s of SIGNALS) process.on(s, onSignal);
}
function uninstall(): void {
  for (const s of SIGNALS) process.off(s, onSignal);
}

/**
 * Runs `write(tmp)`, which writes the temporary `tmp` and renames it to `target`. If it throws, `tmp` is
 * removed and the error is rethrown naming `target` (a system error such as ENOSPC otherwise names no
 * file); if a signal stops the process meanwhile, `tmp` is removed before it exits.
 */
export async function withTempPath<T>(tmp: string, target: string, write: (tmp: string) => Promise<T>): Promise<T> {
  if (live.size === 0) install();
  live.add(tmp);
  try {
    return await write(tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw writeError(target, e);
  } finally {
    live.delete(tmp);
    if (live.size === 0) uninstall();
  }
}

/**
 * Runs `step()` with `repair` armed: if a signal stops the process meanwhile, `repair()` runs before the
 * temporary paths are removed (a folder swap puts the old folder back with it). Call it inside
 * `withTempPath`, whose signal handler runs it.
 */
export async function repairOnSignal<T>(repair: () => void, step: () => Promise<T>): Promise<T> {
  repairs.add(repair);
  try {
    return await step();
  } finally {
    repairs.delete(repair);
  }
}

/** `<path>: cannot write (why)`: the error code, spelled out for a full disk or quota, else the message. */
export function cannotWriteMessage(path: string, e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const why = err?.code === 'ENOSPC' ? 'ENOSPC: no space left on device' : err?.code === 'EDQUOT' ? 'EDQUOT: disk quota exceeded' : (err?.code ?? err?.message);
  return `${path}: cannot write (${why})`;
}

/** A system error of a write, with the file named (an error that already names it is kept). */
export function writeError(path: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.code !== 'string' || (typeof err.message === 'string' && err.message.includes(path))) return e as Error;
  const out = new Error(cannotWriteMessage(path, e));
  (out as NodeJS.ErrnoException).code = err.code;
  return out;
}

/**
 * Checks up front that `target` can be written: the nearest existing folder above it is a folder and is
 * writable (missing folders in between are created by the writers), and a file target is no folder. So a
 * long job into an unwritable place fails before the work, not after. `what` names the flag (e.g. "--run").
 */
export function checkWritable(target: string, what: string, kind: 'file' | 'folder' = 'file'): void {
  const dir = dirname(resolve(target));
  if (existsSync(target)) {
    const isDir = statSync(target).isDirectory();
    if (kind === 'file' && isDir) throw new Error(`${what} ${target}: is a folder, expected a file name`);
    if (kind === 'folder' && !isDir) throw new Error(`${what} ${target}: is a file, expected a folder`);
  }
  let parent = dir;
  while (!existsSync(parent)) {
    const up = dirname(parent);
    if (up === parent) break;
    parent = up;
  }
  if (!statSync(parent).isDirectory()) throw new Error(`${what} ${target}: ${parent} is not a folder`);
  try {
    accessSync(parent, constants.W_OK | constants.X_OK);
  } catch {
    throw new Error(`${what} ${target}: cannot write in ${parent} (permission denied)`);
  }
}
