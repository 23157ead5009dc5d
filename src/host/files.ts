/**
 * Files by path: the Node host. Everything in the core that reads or writes a file by its path comes
 * here or to file-source.ts (a weight file's bytes), so that a browser build swaps these modules for
 * their .browser.ts files (package.json `browser` field) and the rest runs unchanged on URLs, Blobs
 * and Files (weights/source.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';

/** Opens `path` for writing (`wx`: never replaces an existing file; `w`: does). */
export function createFile(path: string, flags: 'w' | 'wx') {
  return open(path, flags);
}

/** A text file's content; the error names the file and says why (`ENOENT` …). */
export async function readTextFile(path: string): Promise<string> {
  return readFile(path, 'utf8');
}

export function readTextFileSync(path: string): string {
  return readFileSync(path, 'utf8');
}

export function fileExists(path: string): boolean {
  return existsSync(path);
}

/** `dir/name` with the platform's separator rules (Node's path.join). */
export { join as joinPath } from 'node:path';
