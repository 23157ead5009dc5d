// Downloads the files a BGE-M3 snapshot load needs from the Hugging Face hub (or any endpoint speaking its API)
// into a plain directory: resumable (`<file>.part` + HTTP Range), size- and hash-verified, atomic (rename after
// verification), and never overwriting a differing user file unless `force` is set.
//
// Metadata goes through @huggingface/hub (`modelInfo` to pin the revision to a commit, `listFiles` for sizes and
// hashes); the bytes are fetched here directly, because the library's blobs neither resume nor let us check
// that a Range request was answered with 206.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { HubApiError, listFiles, modelInfo, type ListFileEntry } from '@huggingface/hub';

export const DEFAULT_REPO = 'BAAI/bge-m3';
export const DEFAULT_DIR = 'weights/bge-m3';
export const DEFAULT_REVISION = 'main';
export const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** Files that must exist on the repo. */
export const REQUIRED_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'] as const;
/** Files downloaded when present. */
export const OPTIONAL_FILES = ['sentencepiece.bpe.model'] as const;
/** One of each group is required; the first one present on the repo is taken. */
export const ALTERNATIVE_FILES: readonly (readonly string[])[] = [
  ['model.safetensors', 'pytorch_model.bin'],
  ['colbert_linear.safetensors', 'colbert_linear.pt'],
  ['sparse_linear.safetensors', 'sparse_linear.pt'],
];

export type DownloadErrorCode =
  | 'usage' // bad option value (endpoint URL, token format)
  | 'unauthorized' // HTTP 401
  | 'forbidden' // HTTP 403
  | 'not-found' // HTTP 404 (repo, revision or file)
  | 'network' // connection refused, DNS failure, reset, ...
  | 'http' // any other unexpected HTTP status / malformed answer
  | 'missing-files' // the repo lacks files a snapshot needs
  | 'conflict' // a local file differs and force is not set
  | 'integrity' // size or hash mismatch after download
  | 'interrupted' // the transfer broke and retries ran out (partial data kept)
  | 'disk'; // not enough free space

export class DownloadError extends Error {
  readonly code: DownloadErrorCode;
  constructor(code: DownloadErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DownloadError';
    this.code = code;
  }
}

export interface ProgressSink {
  update(value: number): void;
  stop(): void;
}

export interface DownloadOptions {
  /** Hub repo id; default `BAAI/bge-m3`. */
  repo?: string;
  /** Target directory; default `weights/bge-m3` (relative to the working directory). */
  dir?: string;
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
  /** Bytes that were already present in `<file>.part` when the transfer started (0 when fresh). */
  resumedFrom: number;
}

export interface DownloadResult {
  repo: string;
  revision: string;
  /** Commit the revision resolved to (what was actually downloaded). */
  commit: string;
  endpoint: string;
  dir: string;
  files: FileResult[];
}

/** A repo file as the tree listing describes it. */
export interface RemoteFile {
  path: string;
  size: number;
  /** sha256 of the content (LFS files only). */
  sha256?: string;
  /** git blob sha1 of the content (non-LFS files only: for LFS files the listing's oid hashes the pointer). */
  gitSha1?: string;
}

export interface SnapshotSelection {
  files: RemoteFile[];
  /** Required files absent from the listing ("a or b" for alternatives). */
  missing: string[];
}

/** Picks the files a snapshot load needs out of a repo listing. */
export function selectSnapshotFiles(entries: Iterable<Pick<ListFileEntry, 'type' | 'path' | 'size' | 'oid' | 'lfs'>>): SnapshotSelection {
  const byPath = new Map<string, RemoteFile>();
  for (const e of entries) {
    if (e.type !== 'file') continue;
    const size = e.lfs?.size ?? e.size;
    const f: RemoteFile = { path: e.path, size };
    if (e.lfs) f.sha256 = e.lfs.oid.toLowerCase();
    else if (e.oid && /^[0-9a-f]{40}$/i.test(e.oid)) f.gitSha1 = e.oid.toLowerCase();
    byPath.set(e.path, f);
  }
  const files: RemoteFile[] = [];
  const missing: string[] = [];
  for (const p of REQUIRED_FILES) {
    const f = byPath.get(p);
    if (f) files.push(f);
    else missing.push(p);
  }
  for (const group of ALTERNATIVE_FILES) {
    const found = group.map((p) => byPath.get(p)).find((f): f is RemoteFile => f !== undefined);
    if (found) files.push(found);
    else missing.push(group.join(' or '));
  }
  for (const p of OPTIONAL_FILES) {
    const f = byPath.get(p);
    if (f) files.push(f);
  }
  return { files, missing };
}

interface Digest {
  algo: 'sha256' | 'git-sha1';
  expected: string;
  hash: Hash;
}

function newDigest(f: RemoteFile): Digest | undefined {
  if (f.sha256) return { algo: 'sha256', expected: f.sha256, hash: createHash('sha256') };
  if (f.gitSha1) {
    const hash = createHash('sha1');
    hash.update(`blob ${f.size}\0`);
    return { algo: 'git-sha1', expected: f.gitSha1, hash };
  }
  return undefined;
}

async function hashFile(path: string, digest: Digest | undefined, limit?: number): Promise<number> {
  let n = 0;
  const stream = createReadStream(path, limit === undefined ? {} : { start: 0, end: limit - 1 });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    digest?.hash.update(chunk);
    n += chunk.length;
  }
  return n;
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : -1;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Compares a local file with the remote description; returns undefined when equal, else why it differs. */
async function compareLocal(path: string, f: RemoteFile): Promise<string | undefined> {
  const size = await fileSize(path);
  if (size === -1) return 'it is not a regular file';
  if (size !== f.size) return `size ${size} bytes, repo has ${f.size}`;
  const digest = newDigest(f);
  if (!digest) return undefined;
  await hashFile(path, digest);
  const got = digest.hash.digest('hex');
  return got === digest.expected ? undefined : `${digest.algo} ${got}, repo has ${digest.expected}`;
}

function networkReason(err: unknown): string | undefined {
  const seen = new Set<unknown>();
  let e: unknown = err;
  while (e && typeof e === 'object' && !seen.has(e)) {
    seen.add(e);
    const o = e as { code?: unknown; errors?: unknown[]; cause?: unknown; message?: unknown };
    const code = typeof o.code === 'string' ? o.code : undefined;
    switch (code) {
      case 'ECONNREFUSED':
        return 'connection refused';
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return 'host name not found';
      case 'ETIMEDOUT':
      case 'UND_ERR_CONNECT_TIMEOUT':
      case 'UND_ERR_HEADERS_TIMEOUT':
      case 'UND_ERR_BODY_TIMEOUT':
        return 'timed out';
      case 'ECONNRESET':
      case 'EPIPE':
      case 'UND_ERR_SOCKET':
      case 'UND_ERR_CLOSED':
        return 'connection closed by the server';
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
        return 'network unreachable';
      case 'CERT_HAS_EXPIRED':
      case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
      case 'SELF_SIGNED_CERT_IN_CHAIN':
        return `TLS certificate problem (${code})`;
    }
    if (Array.isArray(o.errors) && o.errors.length > 0) {
      const inner = networkReason(o.errors[0]);
      if (inner) return inner;
    }
    e = o.cause;
  }
  if (err instanceof TypeError && /fetch failed|terminated/i.test(err.message)) return err.message;
  return undefined;
}

function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ms <= 0) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** Transfer failed in a way that a resumed attempt may fix. */
class TransientError extends Error {}

interface Context {
  repo: string;
  revision: string;
  commit: string;
  endpoint: string;
  token: string | undefined;
  fetch: typeof fetch;
  retries: number;
  retryDelayMs: number;
  log: (line: string) => void;
  progress: DownloadOptions['progress'];
  signal: AbortSignal | undefined;
}

function httpError(ctx: Context, status: number, what: string, detail?: string, errorCode?: string | null): DownloadError {
  const at = `${what} (HTTP ${status} from ${ctx.endpoint})`;
  const extra = detail ? `: ${detail}` : '';
  if (status === 401) {
    const hint = ctx.token
      ? 'HF_TOKEN was sent but rejected: check that it is valid and has read access to this repo.'
      : 'The repo may be private or gated (or may not exist): set HF_TOKEN to a Hugging Face access token with read access.';
    return new DownloadError('unauthorized', `unauthorized: ${at}${extra}. ${hint}`);
  }
  if (status === 403) {
    return new DownloadError(
      'forbidden',
      `forbidden: ${at}${extra}. If the repo is gated, accept its conditions on the model page with the account ` +
        `HF_TOKEN belongs to, and make sure HF_TOKEN has read access${ctx.token ? '' : ' (HF_TOKEN is not set)'}.`,
    );
  }
  if (status === 404) {
    let msg: string;
    if (errorCode === 'RevisionNotFound') msg = `revision "${ctx.revision}" not found in repo ${ctx.repo}`;
    else if (errorCode === 'EntryNotFound') msg = `${what}: file not found`;
    else msg = `repo ${ctx.repo} (revision "${ctx.revision}") not found`;
    return new DownloadError('not-found', `${msg} (HTTP 404 from ${ctx.endpoint})${extra}`);
  }
  return new DownloadError('http', `unexpected answer: ${at}${extra}`);
}

/** Runs a @huggingface/hub call and turns its failures into DownloadErrors. */
async function hubCall<T>(ctx: Context, what: string, lastErrorCode: () => string | null, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof DownloadError) throw err;
    if (err instanceof HubApiError) {
      // The library appends ". URL: ..." to the server's message; keep only the server's words.
      const detail = err.message.replace(/\.?\s*URL: .*$/s, '').replace(/^Api error with status \d+$/, '');
      throw httpError(ctx, err.statusCode, what, detail || undefined, lastErrorCode());
    }
    const reason = networkReason(err);
    if (reason) {
      throw new DownloadError('network', `cannot reach ${ctx.endpoint} (${reason}) while ${what}. Check HF_ENDPOINT and your network.`, {
        cause: err,
      });
    }
    throw err;
  }
}

/**
 * Downloads (or resumes) one file into `<target>.part`, verifies it and renames it to `target`.
 * Returns the verified hash label and the number of bytes found in `.part` at the start.
 */
async function fetchFile(ctx: Context, f: RemoteFile, target: string): Promise<{ verified?: string; resumedFrom: number }> {
  const part = `${target}.part`;
  const url = `${ctx.endpoint}/${ctx.repo}/resolve/${encodeURIComponent(ctx.commit)}/${encodePath(f.path)}`;
  let attempt = 0;
  let freshRetryUsed = false;
  let resumedFrom: number | undefined;

  for (;;) {
    let have = (await fileSize(part)) ?? 0;
    if (have < 0) throw new DownloadError('conflict', `${part} exists and is not a regular file; remove it and retry`);
    if (have > f.size) {
      ctx.log(`${f.path}: partial file is larger than the repo file; starting over`);
      await rm(part, { force: true });
      have = 0;
    }
    resumedFrom ??= have;
    const resumed = have > 0;

    const digest = newDigest(f);
    let written = have;
    const bar = have < f.size ? ctx.progress?.(f.path, f.size, have) : undefined;
    try {
      if (have < f.size) {
        const headers: Record<string, string> = { 'Accept-Encoding': 'identity', 'User-Agent': 'bge-m3-tfjs' };
        if (ctx.token) headers['Authorization'] = `Bearer ${ctx.token}`;
        if (have > 0) headers['Range'] = `bytes=${have}-`;

        let res: Response;
        try {
          res = await ctx.fetch(url, { headers, redirect: 'follow', signal: ctx.signal });
        } catch (err) {
          const reason = networkReason(err);
          if (!reason) throw err;
          throw new TransientError(`cannot reach ${ctx.endpoint} (${reason})`, { cause: err });
        }

        let append: boolean;
        if (res.status === 206 && have > 0) {
          const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
          const total = m?.[3];
          if (!m || Number(m[1]) !== have || (total !== undefined && total !== '*' && Number(total) !== f.size)) {
            await res.body?.cancel();
            throw new DownloadError(
              'http',
              `${f.path}: server answered the resume request with Content-Range "${res.headers.get('content-range')}", ` +
                `expected bytes ${have}-${f.size - 1}/${f.size}. Delete ${part} and retry.`,
            );
          }
          append = true;
        } else if (res.status === 206) {
          // A 206 to a request without Range makes no sense; refuse rather than guess.
          await res.body?.cancel();
          throw new DownloadError('http', `${f.path}: server sent partial content (206) to a request without Range`);
        } else if (res.status === 200) {
          if (have > 0) ctx.log(`${f.path}: server ignored the Range request; restarting from 0`);
          append = false;
          have = 0;
          written = 0;
          bar?.update(0);
        } else if (res.status === 416) {
          await res.body?.cancel();
          ctx.log(`${f.path}: server rejected the resume offset ${have}; starting over`);
          await rm(part, { force: true });
          if (attempt++ >= ctx.retries) throw new DownloadError('http', `${f.path}: server keeps answering 416 (range not satisfiable)`);
          continue;
        } else {
          let detail: string | undefined;
          try {
            const text = (await res.text()).trim();
            if (text) {
              try {
                const j = JSON.parse(text) as { error?: unknown; message?: unknown };
                detail = String(j.error ?? j.message ?? text);
              } catch {
                detail = text.slice(0, 200);
              }
            }
          } catch {
            // body unreadable: the status says enough
          }
          throw httpError(ctx, res.status, `downloading ${f.path}`, detail, res.headers.get('x-error-code'));
        }

        if (append && digest) await hashFile(part, digest, have);

        const fh = await open(part, append ? 'a' : 'w');
        try {
          if (!res.body) throw new TransientError(`${f.path}: empty response body`);
          try {
            for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
              if (written + chunk.length > f.size) {
                throw new DownloadError('integrity', `${f.path}: server sent more than the ${f.size} bytes the repo listing announced`);
              }
              await fh.write(chunk);
              digest?.hash.update(chunk);
              written += chunk.length;
              bar?.update(written);
            }
          } catch (err) {
            if (err instanceof DownloadError) throw err;
            const reason = networkReason(err);
            if (!reason) throw err;
            throw new TransientError(`transfer of ${f.path} broke after ${written} of ${f.size} bytes (${reason})`, { cause: err });
          }
          if (written < f.size) {
            throw new TransientError(`transfer of ${f.path} ended after ${written} of ${f.size} bytes`);
          }
          await fh.sync();
        } finally {
          await fh.close();
        }
      } else if (digest) {
        await hashFile(part, digest);
      }
    } catch (err) {
      if (err instanceof DownloadError && err.code === 'integrity') await rm(part, { force: true });
      if (!(err instanceof TransientError)) throw err;
      if (attempt++ >= ctx.retries) {
        throw new DownloadError(
          'interrupted',
          `${err.message}. The partial data is kept in ${part}; run the command again to resume.`,
          { cause: err.cause ?? err },
        );
      }
      ctx.log(`${err.message}; retrying (${attempt}/${ctx.retries})`);
      await sleep(ctx.retryDelayMs * attempt, ctx.signal);
      continue;
    } finally {
      bar?.stop();
    }

    // Verify size and hash of the complete .part.
    const size = (await fileSize(part)) ?? 0;
    let problem: string | undefined;
    let got: string | undefined;
    if (size !== f.size) problem = `size mismatch: expected ${f.size} bytes, got ${size}`;
    else if (digest) {
      got = digest.hash.digest('hex');
      if (got !== digest.expected) problem = `${digest.algo} mismatch: expected ${digest.expected}, got ${got}`;
    }
    if (problem) {
      await rm(part, { force: true });
      if (resumed && !freshRetryUsed) {
        // The kept partial data may come from another version of the file: try once from scratch.
        freshRetryUsed = true;
        ctx.log(`${f.path}: resumed download failed verification (${problem}); downloading it again from the start`);
        continue;
      }
      throw new DownloadError('integrity', `${f.path}: ${problem}. The downloaded data was deleted.`);
    }
    await rename(part, target);
    return { verified: digest ? `${digest.algo}:${got}` : undefined, resumedFrom };
  }
}

/**
 * Downloads the BGE-M3 snapshot files of `repo@revision` into `dir`.
 *
 * Order of work: pin the revision to a commit, list the repo, select the files (error if required ones are
 * missing), compare existing local files (identical → skipped; different → error unless `force`, before anything
 * is downloaded), check free disk space, then fetch each remaining file.
 */
export async function downloadSnapshot(options: DownloadOptions = {}): Promise<DownloadResult> {
  const repo = options.repo ?? DEFAULT_REPO;
  const revision = options.revision ?? DEFAULT_REVISION;
  const dir = options.dir ?? DEFAULT_DIR;
  const rawEndpoint = options.endpoint ?? (process.env['HF_ENDPOINT'] || DEFAULT_ENDPOINT);
  const token = options.token === null ? undefined : (options.token ?? (process.env['HF_TOKEN'] || undefined));
  const baseFetch = options.fetch ?? globalThis.fetch;

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
  if (!/^[\w.-]+(\/[\w.-]+)?$/.test(repo)) {
    throw new DownloadError('usage', `invalid repo id "${repo}" (expected "owner/name")`);
  }

  // Remember the hub's X-Error-Code of the last failed answer: it tells a missing repo from a missing revision.
  let lastErrorCode: string | null = null;
  const trackingFetch: typeof fetch = async (input, init) => {
    const res = await baseFetch(input, init);
    if (!res.ok) lastErrorCode = res.headers.get('x-error-code');
    return res;
  };

  const ctx: Context = {
    repo,
    revision,
    commit: revision,
    endpoint,
    token,
    fetch: trackingFetch,
    retries: Math.max(0, options.retries ?? 3),
    retryDelayMs: options.retryDelayMs ?? 1000,
    log: options.log ?? (() => {}),
    progress: options.progress,
    signal: options.signal,
  };
  const credentials = token ? { accessToken: token } : {};
  const errorCode = () => lastErrorCode;

  // Pin the revision: the listing and every file then come from the same commit even if the branch moves.
  const info = await hubCall(ctx, `resolving ${repo}@${revision}`, errorCode, () =>
    modelInfo({ name: repo, revision, hubUrl: endpoint, fetch: trackingFetch, additionalFields: ['sha'], ...credentials }),
  );
  if (typeof info.sha === 'string' && /^[0-9a-f]{40}$/i.test(info.sha)) ctx.commit = info.sha;

  const entries = await hubCall(ctx, `listing ${repo}@${revision}`, errorCode, async () => {
    const out: ListFileEntry[] = [];
    for await (const e of listFiles({ repo, revision: ctx.commit, hubUrl: endpoint, fetch: trackingFetch, ...credentials })) out.push(e);
    return out;
  });

  const { files, missing } = selectSnapshotFiles(entries);
  if (missing.length > 0) {
    throw new DownloadError(
      'missing-files',
      `${repo}@${revision} lacks files a BGE-M3 snapshot needs: ${missing.join(', ')}`,
    );
  }
  ctx.log(`${repo}@${revision} (commit ${ctx.commit.slice(0, 12)}) -> ${dir}`);

  await mkdir(dir, { recursive: true });

  // Compare what is already there before touching anything.
  const results = new Map<string, FileResult>();
  const conflicts: string[] = [];
  const todo: { file: RemoteFile; replace: boolean }[] = [];
  for (const f of files) {
    const target = join(dir, f.path);
    const exists = (await fileSize(target)) !== undefined;
    if (!exists) {
      todo.push({ file: f, replace: false });
      continue;
    }
    const diff = await compareLocal(target, f);
    if (diff === undefined) {
      const d = newDigest(f);
      results.set(f.path, {
        path: f.path,
        size: f.size,
        status: 'up-to-date',
        verified: d ? `${d.algo}:${d.expected}` : undefined,
        resumedFrom: 0,
      });
      ctx.log(`${f.path}: up to date`);
    } else if (options.force) {
      todo.push({ file: f, replace: true });
    } else {
      conflicts.push(`${target} (${diff})`);
    }
  }
  if (conflicts.length > 0) {
    throw new DownloadError(
      'conflict',
      `refusing to overwrite local files that differ from ${repo}@${revision}:\n  ${conflicts.join('\n  ')}\n` +
        `Move them away, or pass --force to replace them.`,
    );
  }

  // Free space: what is still to be fetched, minus what the .part files already hold.
  let needed = 0;
  for (const { file } of todo) {
    const have = (await fileSize(join(dir, `${file.path}.part`))) ?? 0;
    needed += file.size - Math.min(Math.max(have, 0), file.size);
  }
  if (needed > 0) {
    try {
      const fs = await statfs(dir);
      const free = fs.bavail * fs.bsize;
      if (free < needed) {
        throw new DownloadError('disk', `not enough free space in ${dir}: ${needed} bytes needed, ${free} available`);
      }
    } catch (err) {
      if (err instanceof DownloadError) throw err;
      // statfs unsupported here: go ahead, a write will fail with ENOSPC if it must.
    }
  }

  for (const { file, replace } of todo) {
    const target = join(dir, file.path);
    ctx.log(`${file.path}: downloading ${file.size} bytes${replace ? ' (replacing the local copy: --force)' : ''}`);
    const { verified, resumedFrom } = await fetchFile(ctx, file, target);
    results.set(file.path, {
      path: file.path,
      size: file.size,
      status: replace ? 'replaced' : 'downloaded',
      verified,
      resumedFrom,
    });
    ctx.log(`${file.path}: ${verified ? `${verified.split(':')[0]} verified` : 'size verified'}${resumedFrom > 0 ? ` (resumed at ${resumedFrom} bytes)` : ''}`);
  }

  return {
    repo,
    revision,
    commit: ctx.commit,
    endpoint,
    dir,
    files: files.map((f) => results.get(f.path)).filter((r): r is FileResult => r !== undefined),
  };
}
