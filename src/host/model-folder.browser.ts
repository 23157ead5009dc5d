/** What `BgeM3.load(where)` reads in a browser: a folder URL, absolute or relative to the page. */
import type * as NodeFolder from './model-folder.js';
import { urlFolder } from '../weights/folder.js';

export const openModelFolder: typeof NodeFolder.openModelFolder = async (where, opts = {}) => urlFolder(where, opts);
