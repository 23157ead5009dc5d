/**
 * Where downloaded files go. Two layouts:
 *
 *   plain directory (`--out`):  <dir>/<file>, partial data in <dir>/<file>.part
 *   Hugging Face cache (default): the layout huggingface_hub writes and reads, so Python and this package
 *     share one copy: <cache>/models--<owner>--<name>/blobs/<sha256 or git sha1> holds the bytes (partial
 *     data in <blob>.incomplete, the name huggingface_hub resumes from too), snapshots/<commit>/<file> is a
 *     relative symlink to the blob, refs/<branch> holds the commit.
 */
import { lstat, mkdir, symlink, unlink } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { commitFile, writeFileAtomic } from '../atomic-write.js';
import { repoFolderName } from './cache.js';
import { DownloadError } from './errors.js';
import type { RemoteFile } from './select.js';

export interface Placement {
  /** The path the file is loaded from once done. */
  target: string;
  /** The copy already there to compare with the listing (may not exist). */
  existing: string;
  /** Partial download, resumed with Range. */
  part: string;
  /** Moves the verified partial file into place. */
  install(): Promise<void>;
  /** `existing` matched the listing: make it reachable at `target`. */
  adopt(): Promise<void>;
}

export interface Layout {
  /** The directory a load reads (the plain dir, or the cache's snapshots/<commit>). */
  dir: string;
  /** Set for the cache layout. */
  cache?: string;
  place(f: RemoteFile): Placement;
  /** After every file is in place (the cache layout records the branch in refs/). */
  finish(): Promise<void>;
}

export function plainLayout(dir: string): Layout {
  return {
    dir,
    place(f) {
      const target = join(dir, f.path);
      const part = `${target}.part`;
      return { target, existing: target, part, install: () => commitFile(part, target), adopt: async () => {} };
    },
    finish: async () => {},
  };
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

export function cacheLayout(cache: string, repo: string, revision: string, commit: string): Layout {
  const repoDir = join(cache, repoFolderName(repo));
  const snapshot = join(repoDir, 'snapshots', commit);
  return {
    dir: snapshot,
    cache,
    place(f) {
      const blobName = f.sha256 ?? f.gitSha1;
      if (!blobName) {
        throw new DownloadError('http', `${f.path}: the hub's listing gives no hash, and the cache names blobs by hash; download with --out DIR instead`);
      }
      const blob = join(repoDir, 'blobs', blobName);
      const target = join(snapshot, f.path);
      const link = async () => {
        await mkdir(dirname(target), { recursive: true });
        if (await exists(target)) await unlink(target); // a stale or broken link (the blob was verified above)
        await symlink(relative(dirname(target), blob), target);
      };
      return {
        target,
        existing: blob,
        part: `${blob}.incomplete`,
        install: async () => {
          await commitFile(`${blob}.incomplete`, blob);
          await link();
        },
        adopt: link,
      };
    },
    async finish() {
      if (revision === commit) return;
      await mkdir(dirname(join(repoDir, 'refs', revision)), { recursive: true });
      await writeFileAtomic(join(repoDir, 'refs', revision), commit);
    },
  };
}
