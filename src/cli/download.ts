// `bge-m3 download [--repo BAAI/bge-m3] [--out DIR] [--revision main] [--force]`
import { hubCacheDir } from '../hub/cache.js';
import {
  DEFAULT_REPO,
  DEFAULT_REVISION,
  DownloadError,
  downloadSnapshot,
  type DownloadOptions,
} from '../hub/download.js';
import { defineCommand } from './command.js';
import { CliError, renamedFlag, type CliIO } from './io.js';
import { createProgress, formatBytes } from './progress.js';

export const USAGE = `Usage: bge-m3 download [--repo ${DEFAULT_REPO}] [--out DIR] [--revision ${DEFAULT_REVISION}] [--force]

Downloads the files a BGE-M3 snapshot needs (config, tokenizer files, weights, sparse and ColBERT heads)
from the Hugging Face hub. Without --out they go into the Hugging Face cache that Python's
huggingface_hub (transformers, FlagEmbedding) uses, so both share one copy and \`--model ${DEFAULT_REPO}\`
finds it; with --out, into that plain directory. Interrupted downloads resume from the partial file
(<blob>.incomplete in the cache, <file>.part in --out); every file is checked against the size and hash
the hub lists. Local files that differ are not replaced unless --force is given.

Options:
  --repo <id>         hub repo id (default ${DEFAULT_REPO})
  --out <path>        plain target directory (default: the Hugging Face cache); --dir, its old
                      name, is still accepted with a warning
  --revision <rev>    branch, tag or commit (default ${DEFAULT_REVISION})
  --force             replace local files that differ from the repo
  -h, --help          show this help

Environment:
  HF_ENDPOINT         hub URL (default https://huggingface.co)
  HF_TOKEN            access token for private or gated repos (sent to the hub's own origin only)
  HF_HUB_CACHE        cache directory (else HF_HOME/hub, else ~/.cache/huggingface/hub)
`;

export interface DownloadIO extends CliIO {
  /** Extra options for the download (tests: retries, retryDelayMs, fetch). */
  downloadOptions?: Partial<DownloadOptions>;
}

/** Runs the command; returns the process exit code (0 ok, 1 failure, 2 usage error). */
export const run = defineCommand({
  name: 'download', usage: USAGE, positionals: false,
  options: {
    repo: { type: 'string' }, out: { type: 'string' }, dir: { type: 'string' }, revision: { type: 'string' }, force: { type: 'boolean' },
  },
}, async ({ values, stdout, stderr, warn }, io: DownloadIO) => {
  const out = renamedFlag('out', values.out, 'dir', values.dir, warn);
  for (const [name, value] of [['repo', values.repo], ['out', out], ['revision', values.revision]] as const) {
    if (value !== undefined && value.trim() === '') throw new CliError(`--${name} must not be empty`, true);
  }
  try {
    const result = await downloadSnapshot({
      repo: values.repo ?? DEFAULT_REPO,
      ...(out !== undefined ? { dir: out } : { cacheDir: hubCacheDir().dir }),
      revision: values.revision ?? DEFAULT_REVISION,
      force: values.force ?? false,
      log: (line) => stderr.write(`${line}\n`),
      progress: (label, total, start) => createProgress(label, total, 'bytes', { stream: stderr, start }),
      ...io.downloadOptions,
    });
    const fetched = result.files.filter((f) => f.status !== 'up-to-date');
    const bytes = fetched.reduce((n, f) => n + f.size, 0);
    stdout.write(
      `${result.repo}@${result.revision} (${result.commit.slice(0, 12)}): ${fetched.length} file(s) downloaded (${formatBytes(bytes)}), ` +
        `${result.files.length - fetched.length} up to date, in ${result.dir}\n`,
    );
    if (result.cache) stdout.write(`load it with --model ${result.repo}${result.revision === DEFAULT_REVISION ? '' : `@${result.revision}`}\n`);
    return 0;
  } catch (err) {
    // A bad option value the hub code found (endpoint URL, token format) is a usage error.
    if (err instanceof DownloadError && err.code === 'usage') throw new CliError(err.message, true);
    throw err;
  }
});
