/**
 * One file's bytes: GET the resolve URL into a partial file, resuming with `Range: bytes=<have>-` when
 * part of it is already there, retrying a broken transfer, and checking size and hash before the caller
 * moves it into place. Redirects are followed here, hop by hop, so that the token only goes to the hub's
 * own origin, a loop or a non-http(s) target is named, and a 206 can be checked against the Range asked.
 */
import { open, rm, writeFile } from 'node:fs/promises';
import { DownloadError, httpError, networkReason, type ErrorContext } from './errors.js';
import type { RemoteFile } from './select.js';
import { fileSize, hashFile, newDigest } from './verify.js';

export interface ProgressSink {
  update(value: number): void;
  stop(): void;
}

export interface TransferContext extends ErrorContext {
  fetch: typeof fetch;
  retries: number;
  retryDelayMs: number;
  log: (line: string) => void;
  /** Called once per transferred file; `start` is the number of bytes already present (resume). */
  progress: ((label: string, total: number, start: number) => ProgressSink) | undefined;
  signal: AbortSignal | undefined;
}

const MAX_REDIRECTS = 10;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Transfer failed in a way that a resumed attempt may fix. */
class TransientError extends Error {}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ms <= 0) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });
}

/** GET with redirects followed by hand; Authorization only ever goes to the endpoint's origin. */
async function get(ctx: TransferContext, path: string, url: string, headers: Record<string, string>): Promise<Response> {
  const hubOrigin = new URL(ctx.endpoint).origin;
  const chain = [url];
  for (;;) {
    const current = chain[chain.length - 1]!;
    const h = { ...headers };
    if (ctx.token && new URL(current).origin === hubOrigin) h['Authorization'] = `Bearer ${ctx.token}`;
    let res: Response;
    try {
      res = await ctx.fetch(current, { headers: h, redirect: 'manual', signal: ctx.signal });
    } catch (err) {
      const reason = networkReason(err);
      if (!reason) throw err;
      throw new TransientError(`${path}: cannot reach ${new URL(current).origin} (${reason})`, { cause: err });
    }
    if (!REDIRECTS.has(res.status)) return res;
    await res.body?.cancel();
    const location = res.headers.get('location');
    if (!location) throw new DownloadError('http', `${path}: HTTP ${res.status} redirect without a Location header from ${current}`);
    const next = new URL(location, current);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new DownloadError('http', `${path}: ${current} redirects to ${next.href}, which is not an http(s) URL; not following it`);
    }
    if (chain.includes(next.href)) {
      throw new DownloadError('http', `${path}: redirect loop: ${[...chain, next.href].join(' -> ')}`);
    }
    if (chain.length > MAX_REDIRECTS) throw new DownloadError('http', `${path}: more than ${MAX_REDIRECTS} redirects, last to ${next.href}`);
    chain.push(next.href);
  }
}

/** The server's explanation of an error status (JSON `error` / `message`, or the start of the text). */
async function errorDetail(res: Response): Promise<string | undefined> {
  try {
    const text = (await res.text()).trim();
    if (!text) return undefined;
    try {
      const j = JSON.parse(text) as { error?: unknown; message?: unknown };
      return String(j.error ?? j.message ?? text);
    } catch {
      return text.slice(0, 200);
    }
  } catch {
    return undefined; // body unreadable: the status says enough
  }
}

/**
 * Downloads (or resumes) `url` into `part` and verifies it against `f`. The caller moves `part` into
 * place. Returns the verified hash label and the number of bytes found in `part` at the start.
 */
export async function fetchFile(ctx: TransferContext, f: RemoteFile, url: string, part: string): Promise<{ verified?: string; resumedFrom: number }> {
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
        if (have > 0) headers['Range'] = `bytes=${have}-`;
        const res = await get(ctx, f.path, url, headers);

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
          throw httpError(ctx, res.status, `downloading ${f.path}`, await errorDetail(res), res.headers.get('x-error-code'));
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
      } else {
        if ((await fileSize(part)) === undefined) await writeFile(part, ''); // an empty repo file: nothing to fetch
        if (digest) await hashFile(part, digest);
      }
    } catch (err) {
      if (err instanceof DownloadError && err.code === 'integrity') await rm(part, { force: true });
      if (!(err instanceof TransientError)) throw err;
      if (attempt++ >= ctx.retries) {
        // Only promise a resume when there is partial data to resume from.
        const kept = (await fileSize(part)) ?? 0;
        const after = kept > 0 ? `The partial data (${kept} bytes) is kept in ${part}; run the command again to resume.` : 'No data was received; run the command again to retry.';
        throw new DownloadError('interrupted', `${err.message}. ${after}`, { cause: err.cause ?? err });
      }
      ctx.log(`${err.message}; retrying (${attempt}/${ctx.retries})`);
      await sleep(ctx.retryDelayMs * attempt, ctx.signal);
      continue;
    } finally {
      bar?.stop();
    }

    // Verify size and hash of the complete partial file.
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
    return { verified: digest ? `${digest.algo}:${got}` : undefined, resumedFrom };
  }
}
