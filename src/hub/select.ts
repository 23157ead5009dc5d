/**
 * Which repo files a BGE-M3 snapshot needs, picked out of the hub's tree listing, with the size and
 * hash each download is checked against. The listing is the server's word: sizes and hashes that
 * cannot be right are refused here, before any byte is fetched.
 */
import type { ListFileEntry } from '@huggingface/hub';
import { CHECKPOINT_PARTS, partCandidates } from '../weights/checkpoint-files.js';
import { DownloadError } from './errors.js';

/** Files that must exist on the repo. */
export const REQUIRED_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'] as const;
/** Files downloaded when present. */
export const OPTIONAL_FILES = ['sentencepiece.bpe.model'] as const;
/** One of each group is required; the first one present on the repo is taken. */
export const ALTERNATIVE_FILES: readonly (readonly string[])[] = CHECKPOINT_PARTS.map(partCandidates);

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

type Entry = Pick<ListFileEntry, 'type' | 'path' | 'size' | 'oid' | 'lfs'>;

/** The listing entry as a RemoteFile; throws when its size or LFS hash is impossible. */
function remoteFile(e: Entry): RemoteFile {
  const size: unknown = e.lfs ? e.lfs.size : e.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new DownloadError('http', `the hub's file listing gives ${e.path} the size ${JSON.stringify(size)}, which is not a byte count; refusing to download it`);
  }
  const f: RemoteFile = { path: e.path, size };
  if (e.lfs) {
    const oid = String(e.lfs.oid).toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(oid)) throw new DownloadError('http', `the hub's file listing gives ${e.path} the LFS hash ${JSON.stringify(e.lfs.oid)}, which is not a sha256`);
    f.sha256 = oid;
  } else if (e.oid && /^[0-9a-f]{40}$/i.test(e.oid)) {
    f.gitSha1 = e.oid.toLowerCase();
  }
  return f;
}

/** Picks the files a snapshot load needs out of a repo listing. */
export function selectSnapshotFiles(entries: Iterable<Entry>): SnapshotSelection {
  const byPath = new Map<string, Entry>();
  for (const e of entries) if (e.type === 'file') byPath.set(e.path, e);
  const files: RemoteFile[] = [];
  const missing: string[] = [];
  const take = (e: Entry | undefined): void => {
    if (e) files.push(remoteFile(e));
  };
  for (const p of REQUIRED_FILES) {
    if (byPath.has(p)) take(byPath.get(p));
    else missing.push(p);
  }
  for (const group of ALTERNATIVE_FILES) {
    const found = group.find((p) => byPath.has(p));
    if (found) take(byPath.get(found));
    else missing.push(group.join(' or '));
  }
  for (const p of OPTIONAL_FILES) take(byPath.get(p));
  return { files, missing };
}
