/**
 * Checking bytes against the listing: sha256 for LFS files, the git blob sha1 (`sha1("blob <size>\0" +
 * content)`) for plain files. The hash is fed while the bytes stream in, so a verified download is
 * read once.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { RemoteFile } from './select.js';

export interface Digest {
  algo: 'sha256' | 'git-sha1';
  expected: string;
  hash: Hash;
}

/** A fresh running hash for the file, or undefined when the listing gave no hash (size check only). */
export function newDigest(f: RemoteFile): Digest | undefined {
  if (f.sha256) return { algo: 'sha256', expected: f.sha256, hash: createHash('sha256') };
  if (f.gitSha1) {
    const hash = createHash('sha1');
    hash.update(`blob ${f.size}\0`);
    return { algo: 'git-sha1', expected: f.gitSha1, hash };
  }
  return undefined;
}

/** Feeds the first `limit` bytes (default all) of a file to the digest; returns the byte count read. */
export async function hashFile(path: string, digest: Digest | undefined, limit?: number): Promise<number> {
  let n = 0;
  const stream = createReadStream(path, limit === undefined ? {} : { start: 0, end: limit - 1 });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    digest?.hash.update(chunk);
    n += chunk.length;
  }
  return n;
}

/** Size of a regular file; -1 for anything else that exists; undefined when nothing is there. */
export async function fileSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : -1;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Compares a local file with the remote description; returns undefined when equal, else why it differs. */
export async function compareLocal(path: string, f: RemoteFile): Promise<string | undefined> {
  const size = await fileSize(path);
  if (size === -1) return 'it is not a regular file';
  if (size !== f.size) return `size ${size} bytes, repo has ${f.size}`;
  const digest = newDigest(f);
  if (!digest) return undefined;
  await hashFile(path, digest);
  const got = digest.hash.digest('hex');
  return got === digest.expected ? undefined : `${digest.algo} ${got}, repo has ${digest.expected}`;
}
