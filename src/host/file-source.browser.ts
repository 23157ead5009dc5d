/** A weight file by its path, in a browser: there is none (see files.browser.ts). */
import type * as NodeSource from './file-source.js';
import { noFiles } from './files.browser.js';

export const openFileSource: typeof NodeSource.openFileSource = async (path) => noFiles(`opening '${path}'`);
