/**
 * What can go wrong talking to the hub, as one error type with a code, and the translation of HTTP
 * statuses and socket errors into sentences that say what to do.
 */
export type DownloadErrorCode =
  | 'usage' // bad option value (endpoint URL, token format)
  | 'unauthorized' // HTTP 401
  | 'forbidden' // HTTP 403
  | 'not-found' // HTTP 404 (repo, revision or file)
  | 'network' // connection refused, DNS failure, reset, ...
  | 'http' // any other unexpected HTTP status / malformed answer / bad redirect
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

/** What the messages need to know about the request. */
export interface ErrorContext {
  repo: string;
  revision: string;
  endpoint: string;
  token: string | undefined;
}

/** An HTTP error status as a DownloadError; `errorCode` is the hub's X-Error-Code header. */
export function httpError(ctx: ErrorContext, status: number, what: string, detail?: string, errorCode?: string | null): DownloadError {
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

/** Follows an error's cause chain (and AggregateError members), first node first. */
function* causes(err: unknown): Generator<{ code?: unknown; message?: unknown }> {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0) {
    const e = queue.shift();
    if (!e || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const o = e as { code?: unknown; message?: unknown; errors?: unknown[]; cause?: unknown };
    yield o;
    if (Array.isArray(o.errors)) queue.push(...o.errors);
    queue.push(o.cause);
  }
}

/**
 * A server that redirects in circles or to a non-HTTP URL makes fetch fail with a bare "fetch failed":
 * that is the server's answer, not an unreachable network, so it gets its own sentence (undefined otherwise).
 */
export function redirectProblem(err: unknown): string | undefined {
  for (const o of causes(err)) {
    const m = typeof o.message === 'string' ? o.message : '';
    if (/redirect count exceeded/i.test(m)) return 'too many redirects (a redirect loop)';
    if (/URL scheme must be a HTTP\(S\) scheme/i.test(m)) return 'a redirect to a URL that is not http(s)';
  }
  return undefined;
}

/** Socket-level failures, as a few words; undefined when the error is not one. */
export function networkReason(err: unknown): string | undefined {
  for (const o of causes(err)) {
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
  }
  if (redirectProblem(err)) return undefined;
  if (err instanceof TypeError && /fetch failed|terminated/i.test(err.message)) return err.message;
  return undefined;
}
