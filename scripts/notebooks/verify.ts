/** What the check requires of an executed notebook, compared with the committed one. */
import { compareKeys, parseKeys } from '../../notebooks/lib/keys.js';
import { cellsWithoutOutput, countPictures, firstOutputText, problemsOf, readNotebook, stdoutOf, type Notebook } from './ipynb.js';

/** Everything wrong with a fresh run compared with the committed notebook. */
export function checkRun(committedFile: string, freshFile: string): string[] {
  return checkNotebooks(readNotebook(committedFile), readNotebook(freshFile));
}

export function checkNotebooks(committed: Notebook, fresh: Notebook): string[] {
  const problems = [...problemsOf(fresh), ...problemsOf(committed).map((p) => `committed outputs: ${p}`)];
  const missing = cellsWithoutOutput(committed);
  if (missing.length > 0) problems.push(`committed notebook has code cells without outputs: ${missing.join(', ')} (run with --update)`);
  if (committed.cells.length !== fresh.cells.length) problems.push(`the fresh run has ${fresh.cells.length} cells, the committed notebook ${committed.cells.length}`);
  const silent = cellsWithoutOutput(fresh).filter((i) => !missing.includes(i));
  if (silent.length > 0) problems.push(`cells with committed outputs printed nothing in the fresh run: ${silent.join(', ')}`);
  if (countPictures(fresh) === 0) problems.push('no picture (SVG or PNG output) in the notebook');
  if (!/weights/i.test(firstOutputText(fresh))) problems.push('the first output does not say which weights are used');
  const keys = parseKeys(stdoutOf(fresh));
  if (keys.length === 0) problems.push('the notebook prints no key numbers (◆ lines)');
  problems.push(...compareKeys(parseKeys(stdoutOf(committed)), keys));
  return problems;
}
