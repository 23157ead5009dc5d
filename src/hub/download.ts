/**
 * Downloads the files a BGE-M3 snapshot load needs from the Hugging Face hub (or any endpoint speaking
 * its API): by default into the Hugging Face cache that Python's huggingface_hub uses (so one copy serves
 * both, and `BgeM3.load('BAAI/bge-m3')` finds it), or into a plain directory with `dir`.
 *
 * What @huggingface/hub does here: the API calls, their URLs, auth header and errors (`modelInfo` pins
 * the revision to one commit; `listFiles` gives sizes and hashes) and the cache location
 * (`getHFHubCachePath`'s rules, in cache.ts). What stays our own, because the library's downloads
 * (`downloadFile`, `downloadFileToCacheDir`) neither resume an interrupted transfer with Range nor check
 * the bytes against the listed sha256 / git sha1: transfer.ts (resume, retries, redirects that keep
 * the token on the hub's origin) and verify.ts (hashes), plus never overwriting a differing local file.
 */
import { lstat, mkdir, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { HubApiError, listFiles, modelInfo, type ListFileEntry } from '@huggingface/hub';
import { hubCacheDir } from './cache.js';
import { DownloadError, httpError, networkReason, redirectProblem, type ErrorContext } from './errors.js';
import { cacheLayout, plainLayout, type Layout } from './layout.js';
import { selectSnapshotFiles, type RemoteFile } from './select.js';
import { fetchFile, type ProgressSink, type TransferContext } from './transfer.js';
import { compareLocal, fileSize, newDigest } from './verify.js';

export { DownloadError, type DownloadErrorCode } from './errors.js';
export { ALTERNATIVE_FILES, OPTIONAL_FILES, REQUIRED_FILES, selectSnapshotFiles, type RemoteFile, type SnapshotSelection } from './select.js';
export type { ProgressSink } from './transfer.js';

export const DEFAULT_REPO = 'BAAI/bge-m3';
export const DEFAULT_REVISION = 'main';
export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface DownloadOptions {
  /** Hub repo id; default `BAAI/bge-m3`. */
  repo?: string;
  /** Plain target directory. Without it the files go into the Hugging Face cache (see `cacheDir`). */
  dir?: string;
  /** Hugging Face cache for when `dir` is not given; default as huggingface_hub picks it (HF_HUB_CACHE, HF_HOME, ...). */
  cacheDir?: string;
  /** Branch, tag or commit; default `main`. It is pinned to one commit before anything is listed or fetched. */
  revision?: string;
  /** Replace local files whose content differs from the repo. */
  force?: boolean;
  /** Hub endpoint; default `$HF_ENDPOINT`, else https://huggingface.co. */
  endpoint?: string;
  /** Access token; default `$HF_TOKEN`. Pass `null` to send none. */
  token?: string | null;
  /** Extra attempts after a transfer breaks mid-way (each resumes with a Range request); default 3. */
  retries?: number;
  /** Pause before a retry, multiplied by the attempt number; default 1000 ms. */
  retryDelayMs?: number;
  /** Progress lines (one per event, no trailing newline). */
  log?: (line: string) => void;
  /** Called once per transferred file; `start` is the number of bytes already present (resume). */
  progress?: (label: string, total: number, start: number) => ProgressSink;
  /** fetch implementation; default globalThis.fetch. */
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

export type FileStatus = 'up-to-date' | 'downloaded' | 'replaced';

export interface FileResult {
  path: string;
  size: number;
  status: FileStatus;
  /** Hash that was verified: `sha256:<hex>` (LFS files) or `git-sha1:<hex>` (git blob id), or undefined (size only). */
  verified?: string;
  /** Bytes that were already present in the partial file when the transfer started (0 when fresh). */
  resumedFrom: number;
}

export interface DownloadResult {
  repo: string;
  revision: string;
  /** Commit the revision resolved to (what was actually downloaded). */
  commit: string;
  endpoint: string;
  /** The snapshot directory to load: the plain `dir`, or the cache's snapshots/<commit>. */
  dir: string;
  /** The Hugging Face cache written to, when no `dir` was given. */
  cache?: string;
  files: FileResult[];
}

/** Checks the options that need no network; returns the endpoint without a trailing slash. */
function checkOptions(repo: string, revision: string, rawEndpoint: string, token: string | undefined): string {
  let endpoint: string;
  try {
    const u = new URL(rawEndpoint);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    endpoint = u.href.replace(/\/+$/, '');
  } catch {
    throw new DownloadError('usage', `invalid hub endpoint "${rawEndpoint}" (HF_ENDPOINT must be an http(s) URL)`);
  }
  if (token !== undefined && !token.startsWith('hf_')) {
    // @huggingface/hub throws a bare TypeError for such tokens; say which variable is wrong.
    throw new DownloadError('usage', `HF_TOKEN does not look like a Hugging Face access token (it must start with "hf_")`);
  }
  if (!/^[\w.-]+(\/[\w.-]+)?$/.test(repo)) throw new DownloadError('usage', `invalid repo id "${repo}" (expected "owner/name")`);
  if (revision.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw new DownloadError('usage', `invalid revision "${revision}" (expected a branch, tag or commit)`);
  }
  return endpoint;
}

/** Runs a @huggingface/hub call and turns its failures into DownloadErrors. */
async function hubCall<T>(ctx: ErrorContext, what: string, lastErrorCode: () => string | null, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof DownloadError) throw err;
    if (err instanceof HubApiError) {
      // The library appends ". URL: ..." to the server's message; keep only the server's words.
      const detail = err.message.replace(/\.?\s*URL: .*$/s, '').replace(/^Api error with status \d+$/, '');
      throw httpError(ctx, err.statusCode, what, detail || undefined, lastErrorCode());
    }
    const redirect = redirectProblem(err);
    if (redirect) throw new DownloadError('http', `${ctx.endpoint} answered with ${redirect} while ${what}. Check HF_ENDPOINT.`, { cause: err });
    const reason = networkReason(err);
    if (reason) {
      throw new DownloadError('network', `cannot reach ${ctx.endpoint} (${reason}) while ${what}. Check HF_ENDPOINT and your network.`, { cause: err });
    }
    throw err;
  }
}

/** Refuses to start when the disk cannot hold what is still to be fetched (minus partial data already there). */
async function checkFreeSpace(where: string, needed: number): Promise<void> {
  if (needed <= 0) return;
  let free: number;
  try {
    const fs = await statfs(where);
    free = fs.bavail * fs.bsize;
  } catch {
    return; // statfs unsupported here: go ahead, a write will fail with ENOSPC if it must.
  }
  if (free < needed) throw new DownloadError('disk', `not enough free space in ${where}: ${needed} bytes needed, ${free} available`);
}

/**
 * Downloads the BGE-M3 snapshot files of `repo@revision`.
 *
 * Order of work: pin the revision to a commit, list the repo, select the files (error if required ones are
 * missing), compare existing local files (identical → skipped; different → error unless `force`, before anything
 * is downloaded), check free disk space, then fetch each remaining file.
 */
export async function downloadSnapshot(options: DownloadOptions = {}): Promise<DownloadResult> {
  const repo = options.repo ?? DEFAULT_REPO;
  const revision = options.revision ?? DEFAULT_REVISION;
  const token = options.token === null ? undefined : (options.token ?? (process.env['HF_TOKEN'] || undefined));
  const endpoint = checkOptions(repo, revision, options.endpoint ?? (process.env['HF_ENDPOINT'] || DEFAULT_ENDPOINT), token);
  const baseFetch = options.fetch ?? globalThis.fetch;

  // Remember the hub's X-Error-Code of the last failed answer: it tells a missing repo from a missing revision.
  let lastErrorCode: string | null = null;
  const trackingFetch: typeof fetch = async (input, init) => {
    const res = await baseFetch(input, init);
    if (!res.ok) lastErrorCode = res.headers.get('x-error-code');
    return res;
  };
  const ctx: TransferContext = {
    repo,
    revision,
    endpoint,
    token,
    fetch: trackingFetch,
    retries: Math.max(0, options.retries ?? 3),
    retryDelayMs: options.retryDelayMs ?? 1000,
    log: options.log ?? (() => {}),
    progress: options.progress,
    signal: options.signal,
  };
  const hub = { hubUrl: endpoint, fetch: trackingFetch, ...(token ? { accessToken: token } : {}) };
  const errorCode = () => lastErrorCode;

  // Pin the revision: the listing and every file then come from the same commit even if the branch moves.
  const info = await hubCall(ctx, `resolving ${repo}@${revision}`, errorCode, () => modelInfo({ name: repo, revision, additionalFields: ['sha'], ...hub }));
  const commit = typeof info.sha === 'string' && /^[0-9a-f]{40}$/i.test(info.sha) ? info.sha.toLowerCase() : revision;

  const entries = await hubCall(ctx, `listing ${repo}@${revision}`, errorCode, async () => {
    const out: ListFileEntry[] = [];
    for await (const e of listFiles({ repo, revision: commit, ...hub })) out.push(e);
    return out;
  });
  const { files, missing } = selectSnapshotFiles(entries);
  if (missing.length > 0) {
    throw new DownloadError('missing-files', `${repo}@${revision} lacks files a BGE-M3 snapshot needs: ${missing.join(', ')}`);
  }

  const layout: Layout =
    options.dir !== undefined ? plainLayout(options.dir) : cacheLayout(options.cacheDir ?? hubCacheDir().dir, repo, revision, commit);
  ctx.log(`${repo}@${revision} (commit ${commit.slice(0, 12)}) -> ${layout.cache ? `Hugging Face cache ${layout.dir}` : layout.dir}`);

  // Compare what is already there before touching anything.
  const results = new Map<string, FileResult>();
  const conflicts: string[] = [];
  const todo: { file: RemoteFile; replace: boolean }[] = [];
  for (const f of files) {
    const place = layout.place(f);
    // In the cache the target is normally a symlink into blobs/; a real file there (a copy made where
    // symlinks are unavailable) is someone's data like any local file.
    if (place.target !== place.existing && (await lstat(place.target).then((s) => s.isFile(), () => false))) {
      const diff = await compareLocal(place.target, f);
      if (diff !== undefined && !options.force) conflicts.push(`${place.target} (${diff})`);
    }
    if ((await fileSize(place.existing)) === undefined) {
      todo.push({ file: f, replace: false });
      continue;
    }
    const diff = await compareLocal(place.existing, f);
    if (diff === undefined) {
      await place.adopt();
      const d = newDigest(f);
      results.set(f.path, { path: f.path, size: f.size, status: 'up-to-date', verified: d ? `${d.algo}:${d.expected}` : undefined, resumedFrom: 0 });
      ctx.log(`${f.path}: up to date`);
    } else if (options.force) {
      todo.push({ file: f, replace: true });
    } else {
      conflicts.push(`${place.existing} (${diff})`);
    }
  }
  if (conflicts.length > 0) {
    throw new DownloadError(
      'conflict',
      `refusing to overwrite local files that differ from ${repo}@${revision}:\n  ${conflicts.join('\n  ')}\n` +
        `Move them away, or pass --force to replace them.`,
    );
  }

  let needed = 0;
  for (const { file } of todo) {
    const place = layout.place(file);
    await mkdir(dirname(place.part), { recursive: true });
    needed += file.size - Math.min(Math.max((await fileSize(place.part)) ?? 0, 0), file.size);
  }
  await mkdir(layout.dir, { recursive: true });
  await checkFreeSpace(layout.cache ?? layout.dir, needed);

  const url = (f: RemoteFile) => `${endpoint}/${repo}/resolve/${encodeURIComponent(commit)}/${f.path.split('/').map(encodeURIComponent).join('/')}`;
  for (const { file, replace } of todo) {
    const place = layout.place(file);
    ctx.log(`${file.path}: downloading ${file.size} bytes${replace ? ' (replacing the local copy: --force)' : ''}`);
    const { verified, resumedFrom } = await fetchFile(ctx, file, url(file), place.part);
    await place.install();
    results.set(file.path, { path: file.path, size: file.size, status: replace ? 'replaced' : 'downloaded', verified, resumedFrom });
    ctx.log(`${file.path}: ${verified ? `${verified.split(':')[0]} verified` : 'size verified'}${resumedFrom > 0 ? ` (resumed at ${resumedFrom} bytes)` : ''}`);
  }
  await layout.finish();

  return {
    repo,
    revision,
    commit,
    endpoint,
    dir: layout.dir,
    ...(layout.cache ? { cache: layout.cache } : {}),
    files: files.map((f) => results.get(f.path)).filter((r): r is FileResult => r !== undefined),
  };
}
