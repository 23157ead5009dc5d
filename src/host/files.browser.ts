/**
 * Files by path in a browser: there are none. Bundlers take this module instead of files.ts (the
 * package.json `browser` field); each function says what to use instead.
 */
import type * as NodeFiles from './files.js';

export const noFiles = (what: string): never => {
  throw new Error(`${what} reads or writes a file by its path, which only Node can do; in a browser, `
    + 'load a model from a URL or from File objects (BgeM3.load(url | files)) and read weights from a URL or Blob');
};

export const createFile: typeof NodeFiles.createFile = async (path) => noFiles(`writing '${path}'`);
export const readTextFile: typeof NodeFiles.readTextFile = async (path) => noFiles(`reading '${path}'`);
export const readTextFileSync: typeof NodeFiles.readTextFileSync = (path) => noFiles(`reading '${path}'`);
export const fileExists: typeof NodeFiles.fileExists = (path) => noFiles(`looking for '${path}'`);
export const joinPath: typeof NodeFiles.joinPath = (...parts) => parts.join('/').replace(/\/{2,}/g, '/');
