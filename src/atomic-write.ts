/**
 * The one way this package puts a file or folder in place: written complete under a temporary name beside
 * the target, synced, renamed over the target, and the folder synced so the rename itself survives a crash.
 * A failure or a signal (via `withTempPath`) removes the temporary name, so no half-written output is
 * ever left under its final name nor any temporary file behind. Every `rename` in src/ is in this file.
 *
 * Resumable partial files (an encode `.part`, a download `.incomplete`) keep their own names, since the
 * user resumes from them, and are moved into place by `commitFile`.
 */
import { existsSync, renameSync } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { repairOnSignal, withTempPath } from './temp-path.js';

/** The temporary name of a write to `target`: beside it, hidden (dot), and per process so concurrent writers never collide. */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
}

/** The target name an entry of a folder is the temporary write of (`tempPathFor`'s inverse), or undefined. */
export function tempTargetName(entry: string): string | undefined {
  return /^\.(.+)\.\d+\.tmp$/.exec(entry)?.[1];
}

/** fsyncs a file (its data reaches the disk before it is renamed into place). */
export async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsyncs a folder, so a rename in it is durable; where folders cannot be opened or synced (Windows) this is skipped. */
export async function syncFolder(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
  } catch {
    return;
  }
  try {
    await fh.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EPERM' && code !== 'EISDIR' && code !== 'EBADF') throw e;
  } finally {
    await fh.close();
  }
}

async function syncTree(path: string): Promise<void> {
  for (const e of await readdir(path, { withFileTypes: true })) {
    if (e.isDirectory()) await syncTree(join(path, e.name));
    else if (e.isFile()) await syncFile(join(path, e.name));
  }
  await syncFolder(path);
}

/** An error saying `target` exists (code EEXIST): what a write with `replace: false` throws. */
function existsError(target: string): Error {
  return Object.assign(new Error(`${target} exists`), { code: 'EEXIST' });
}

/**
 * Moves the complete file `from` to `to`: syncs it, renames it, syncs the folder. With `replace: false`
 * an existing `to` is never replaced (hard link then unlink where the file system allows it, else a check
 * just before the rename) and the error has code EEXIST; `from` is then left as it was.
 */
export async function commitFile(from: string, to: string, opts: { replace?: boolean } = {}): Promise<void> {
  await syncFile(from);
  if (opts.replace === false) {
    try {
      await link(from, to);
      await unlink(from);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw existsError(to);
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EXDEV') throw e;
      if (existsSync(to)) throw existsError(to); // no hard links here: checked just before
      await rename(from, to);
    }
  } else {
    await rename(from, to);
  }
  await syncFolder(dirname(to));
}

/**
 * Writes `target` atomically: `content` (text or bytes), or whatever `write(tmp)` writes at the temporary
 * path it is given, then `commitFile`. Missing folders above `target` are created. On a failure or a
 * signal the temporary file is removed and the error names `target`.
 */
export async function writeFileAtomic(
  target: string,
  content: string | Uint8Array | ((tmp: string) => Promise<void>),
  opts: { replace?: boolean } = {},
): Promise<void> {
  if (opts.replace === false && existsSync(target)) throw existsError(target);
  await mkdir(dirname(target), { recursive: true });
  const tmp = tempPathFor(target);
  await withTempPath(tmp, target, async () => {
    await rm(tmp, { force: true }); // a leftover of an earlier process with this pid
    if (typeof content === 'function') await content(tmp);
    else await writeFile(tmp, content, { flag: 'wx' });
    await commitFile(tmp, target, opts);
  });
}

/** Puts a folder moved aside to `old` back under `target`, unless its replacement is already there. */
export function putBackAside(old: string, target: string): void {
  if (existsSync(old) && !existsSync(target)) renameSync(old, target);
}

/**
 * Writes the folder `target` atomically: `fill(tmp)` fills a fresh temporary folder beside it, whose files
 * are then synced and which is swapped in for `target`: an existing `target` is moved aside, the new
 * folder moved in (the old one put back if that fails), then the old one removed. On a failure or a
 * signal the temporary folder is removed and the error names `target`.
 */
export async function writeFolderAtomic(target: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  const tmp = tempPathFor(target);
  await withTempPath(tmp, target, async () => {
    await rm(tmp, { recursive: true, force: true }); // a leftover of an earlier process with this pid
    await mkdir(tmp);
    await fill(tmp);
    await syncTree(tmp);
    if (existsSync(target)) {
      const old = join(dirname(target), `.${basename(target)}.${process.pid}.old`);
      await rm(old, { recursive: true, force: true });
      const putBack = () => putBackAside(old, target);
      await repairOnSignal(putBack, async () => {
        await rename(target, old);
        try {
          await rename(tmp, target);
        } catch (e) {
          putBack();
          throw e;
        }
      });
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, target);
    }
    await syncFolder(dirname(target));
  });
}
