/** What the check requires of an executed notebook, compared with the committed one. */
import { compareKeys, parseKeys } from '../../notebooks/lib/keys.js';
import {
  asRead, badTables, blankPictures, cellsWithoutExecutionCount, cellsWithoutOutput, countPictures, firstOutputText,
  keyText, longCodeLines, problemsOf, readNotebook, repeatedSectionNumbers, visibleKeyLines, type Notebook,
} from './ipynb.js';

/** Everything wrong with a fresh run compared with the committed notebook. */
export function checkRun(committedFile: string, freshFile: string): string[] {
  return checkNotebooks(readNotebook(committedFile), readNotebook(freshFile));
}

/** What a reader of the committed notebook would see wrong, each message starting 'committed …'. */
export function readerProblems(committed: Notebook): string[] {
  const problems = [...problemsOf(committed), ...visibleKeyLines(committed), ...badTables(committed), ...blankPictures(committed),
    ...longCodeLines(committed), ...repeatedSectionNumbers(committed)];
  const missing = cellsWithoutOutput(committed);
  if (missing.length > 0) problems.push(`code cells without outputs: ${missing.join(', ')} (run with --update)`);
  const uncounted = cellsWithoutExecutionCount(committed);
  if (uncounted.length > 0) problems.push(`code cells without an execution count (the prompt reads In [ ]): ${uncounted.join(', ')} (run with --update)`);
  return problems.map((p) => `committed: ${p}`);
}

/**
 * Everything wrong with a fresh run (an executed copy, its key lines printed) compared with the
 * committed notebook (its key lines in metadata).
 */
export function checkNotebooks(committed: Notebook, freshRun: Notebook): string[] {
  // the fresh run as it would be committed: key lines in metadata, execution counts
  const fresh = asRead(JSON.parse(JSON.stringify(freshRun)) as Notebook);
  const problems = [...problemsOf(fresh), ...badTables(fresh), ...blankPictures(fresh), ...readerProblems(committed)];
  if (committed.cells.length !== fresh.cells.length) problems.push(`the fresh run has ${fresh.cells.length} cells, the committed notebook ${committed.cells.length}`);
  const missing = cellsWithoutOutput(committed);
  const silent = cellsWithoutOutput(fresh).filter((i) => !missing.includes(i));
  if (silent.length > 0) problems.push(`cells with committed outputs printed nothing in the fresh run: ${silent.join(', ')}`);
  if (countPictures(fresh) === 0) problems.push('no picture (SVG or PNG output) in the notebook');
  if (!/weights/i.test(firstOutputText(fresh))) problems.push('the first output does not say which weights are used');
  const keys = parseKeys(keyText(fresh));
  if (keys.length === 0) problems.push('the notebook records no key numbers (key() from notebooks/lib/keys.ts)');
  problems.push(...compareKeys(parseKeys(keyText(committed)), keys));
  return problems;
}
