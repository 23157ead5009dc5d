/**
 * What `BgeM3.load(where)` reads, in Node: a folder URL (`https://…/resolve/main/`, read by HTTP
 * ranges), else a directory or a repo id in the Hugging Face cache (hub/cache.ts). The browser build
 * takes model-folder.browser.ts instead (package.json `browser` field).
 */
import { resolveModelDir } from '../hub/cache.js';
import { dirFolder, urlFolder, type ModelFolder } from '../weights/folder.js';
import type { UrlSourceOptions } from '../weights/source.js';

export async function openModelFolder(where: string, opts: UrlSourceOptions = {}): Promise<ModelFolder> {
  if (/^https?:\/\//i.test(where)) return urlFolder(where, opts);
  return dirFolder(resolveModelDir(where));
}
