/**
 * Finds a model the way Python finds it: a model argument is either a snapshot directory or a hub repo
 * id (`BAAI/bge-m3`, optionally `BAAI/bge-m3@<branch, tag or commit>`) looked up in the Hugging Face
 * cache that `huggingface_hub` (and so transformers and FlagEmbedding) fills:
 *
 *   <cache>/models--BAAI--bge-m3/
 *     refs/main                  the commit hash `main` pointed to when it was downloaded
 *     snapshots/<commit>/        one folder per commit; its files are symlinks into blobs/
 *     blobs/<sha256 or git sha1>  the bytes
 *
 * `<cache>` is chosen as huggingface_hub's constants.py does: HF_HUB_CACHE, else the legacy
 * HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub (a leading `~` is expanded, as Python's expanduser does). Nothing here
 * downloads: a model that is not on disk is an error that lists every place looked at and why it failed.
 */
import { existsSync, lstatSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export interface HubCacheLocation {
  dir: string;
  /** Why this directory: the variable that set it, or the default. */
  source: string;
}

export interface ResolveModelOptions {
  /** Branch, tag or commit for a repo id (default `main`); must agree with an `@revision` in the argument. */
  revision?: string;
  /** Environment to read the cache variables from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface ResolvedModel {
  /** The snapshot directory to load. */
  dir: string;
  /** Present when the argument was a repo id found in the cache. */
  hub?: { repo: string; revision: string; commit: string; cache: string };
}

/** The argument names no directory and no cached snapshot; `looked` has one line per place tried. */
export class ModelNotFoundError extends Error {
  readonly looked: string[];
  constructor(arg: string, looked: string[], hint: string) {
    super(`cannot find model "${arg}"; looked at:\n  - ${looked.join('\n  - ')}\n${hint}`);
    this.name = 'ModelNotFoundError';
    this.looked = looked;
  }
}

const COMMIT = /^[0-9a-f]{40}$/;
/** Repo ids as huggingface_hub's validate_repo_id accepts them, owner required. */
const REPO_ID = /^([A-Za-z0-9][\w.-]{0,95})\/([A-Za-z0-9][\w.-]{0,95})$/;

// An empty variable counts as unset here (Python would use "" and end up with a relative "hub" folder).
function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p;
}

/** The hub cache directory huggingface_hub would use with this environment. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): HubCacheLocation {
  for (const name of ['HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE']) {
    const v = envValue(env, name);
    if (v) return { dir: resolve(expandHome(v)), source: name };
  }
  const hfHome = envValue(env, 'HF_HOME');
  if (hfHome) return { dir: resolve(expandHome(hfHome), 'hub'), source: 'HF_HOME' };
  const xdg = envValue(env, 'XDG_CACHE_HOME');
  if (xdg) return { dir: resolve(expandHome(xdg), 'huggingface', 'hub'), source: 'XDG_CACHE_HOME' };
  return { dir: join(homedir(), '.cache', 'huggingface', 'hub'), source: 'default; HF_HUB_CACHE and HF_HOME are not set' };
}

/** `models--BAAI--bge-m3`: the cache folder of a model repo. */
export function repoFolderName(repo: string): string {
  return `models--${repo.split('/').join('--')}`;
}

/** Splits `owner/name[@revision]`; undefined when the text is not shaped like a repo id. */
export function parseRepoId(arg: string): { repo: string; revision?: string } | undefined {
  const at = arg.indexOf('@');
  const repo = at < 0 ? arg : arg.slice(0, at);
  const revision = at < 0 ? undefined : arg.slice(at + 1);
  const m = REPO_ID.exec(repo);
  if (!m || repo.includes('--') || repo.includes('..') || /[.-]$/.test(m[1]!) || /[.-]$/.test(m[2]!)) return undefined;
  if (revision !== undefined && revision === '') return undefined;
  return revision === undefined ? { repo } : { repo, revision };
}

/** A revision is a path below refs/ or snapshots/: refuse anything that could step outside them. */
function unsafeRevision(rev: string): boolean {
  return rev.split('/').some((part) => part === '' || part === '.' || part === '..') || rev.includes('\\');
}

function kind(path: string): 'dir' | 'file' | 'missing' {
  try {
    return statSync(path).isDirectory() ? 'dir' : 'file';
  } catch {
    return 'missing';
  }
}

/** Snapshot entries whose symlink points to a blob that is not there (an interrupted or pruned download). */
function brokenLinks(snapshot: string): string[] {
  const broken: string[] = [];
  for (const name of readdirSync(snapshot)) {
    const p = join(snapshot, name);
    if (lstatSync(p).isSymbolicLink() && !existsSync(p)) broken.push(name);
  }
  return broken;
}

/**
 * Resolves a model argument to a snapshot directory: an existing directory wins; otherwise a repo id
 * is looked up in the hub cache (refs/<revision> → snapshots/<commit>). Throws ModelNotFoundError.
 */
export function resolveModel(arg: string, opts: ResolveModelOptions = {}): ResolvedModel {
  if (typeof arg !== 'string' || arg.trim() === '') throw new TypeError('model must be a directory or a repo id such as BAAI/bge-m3, got an empty value');
  const looked: string[] = [];
  const asPath = resolve(arg);
  const k = kind(asPath);
  if (k === 'dir') return { dir: arg };
  looked.push(`${asPath}: ${k === 'file' ? 'a file, not a snapshot directory' : 'no such directory'}`);

  const id = parseRepoId(arg);
  if (!id) {
    looked.push(`"${arg}" is not a Hugging Face repo id either (expected owner/name or owner/name@revision)`);
    throw new ModelNotFoundError(arg, looked, 'Pass a snapshot directory (with config.json, tokenizer.json and the weights) or a repo id.');
  }
  if (id.revision !== undefined && opts.revision !== undefined && id.revision !== opts.revision) {
    throw new TypeError(`model "${arg}" names revision "${id.revision}" but the revision option says "${opts.revision}"`);
  }
  const revision = id.revision ?? opts.revision ?? 'main';
  const hint =
    `Download it with \`bge-m3 download --repo ${id.repo}\` (into the same cache), or in Python with ` +
    `\`huggingface-cli download ${id.repo}\`; or set HF_HUB_CACHE / HF_HOME to the cache that has it.`;
  if (unsafeRevision(revision)) {
    looked.push(`revision "${revision}" is not a branch, tag or commit name`);
    throw new ModelNotFoundError(arg, looked, hint);
  }

  const cache = hubCacheDir(opts.env);
  const where = `Hugging Face cache ${cache.dir} (${cache.source})`;
  const repoDir = join(cache.dir, repoFolderName(id.repo));
  if (kind(repoDir) !== 'dir') {
    looked.push(`${where}: no ${repoFolderName(id.repo)} folder${kind(cache.dir) === 'dir' ? '' : ' (the cache directory does not exist)'}`);
    throw new ModelNotFoundError(arg, looked, hint);
  }

  // refs/<revision> holds the commit; a commit hash (or a snapshot folder name) is used as is, as huggingface_hub does.
  let commit = revision;
  const refFile = join(repoDir, 'refs', revision);
  if (!COMMIT.test(revision) && kind(refFile) === 'file') {
    commit = readFileSync(refFile, 'utf8').trim();
    if (!COMMIT.test(commit)) {
      looked.push(`${refFile}: does not hold a commit hash (got ${JSON.stringify(commit.slice(0, 60))})`);
      throw new ModelNotFoundError(arg, looked, hint);
    }
  }
  const snapshot = join(repoDir, 'snapshots', commit);
  if (kind(snapshot) !== 'dir') {
    const refs = kind(join(repoDir, 'refs')) === 'dir' ? readdirSync(join(repoDir, 'refs')) : [];
    const snaps = kind(join(repoDir, 'snapshots')) === 'dir' ? readdirSync(join(repoDir, 'snapshots')) : [];
    const why =
      commit === revision && !COMMIT.test(revision)
        ? `no refs/${revision} file and no snapshots/${revision} folder`
        : `refs/${revision} points to ${commit}, but snapshots/${commit} is missing`;
    looked.push(
      `${where}, ${repoDir}: ${why} (refs: ${refs.join(', ') || 'none'}; snapshots: ${snaps.map((s) => s.slice(0, 12)).join(', ') || 'none'})`,
    );
    throw new ModelNotFoundError(arg, looked, hint);
  }
  const broken = brokenLinks(snapshot);
  if (broken.length > 0) {
    looked.push(`${snapshot}: ${broken.join(', ')} ${broken.length === 1 ? 'is a symlink' : 'are symlinks'} to missing blobs (incomplete download)`);
    throw new ModelNotFoundError(arg, looked, hint);
  }
  return { dir: snapshot, hub: { repo: id.repo, revision, commit, cache: cache.dir } };
}

/** resolveModel(arg).dir: the snapshot directory to load. */
export function resolveModelDir(arg: string, opts?: ResolveModelOptions): string {
  return resolveModel(arg, opts).dir;
}
