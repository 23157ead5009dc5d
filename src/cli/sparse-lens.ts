/** `bge-m3 sparse lens`: a sparse head applied to every layer's hidden states of one text (src/lab/lens.ts). */
import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../atomic-write.js';
import { formatLensTable, lensHtml, sparseLens } from '../lab/lens.js';
import { defineCommand } from './command.js';
import { CliError, intFlag } from './io.js';
import { cannotWrite } from './part-file.js';
import { neuralHead } from './sparse-head-arg.js';

export const USAGE = `Usage: bge-m3 sparse lens --model DIR [--head NAME|DIR] [--html OUT.html] [--force] [--json]
                         [--max-length N] [--backend NAME] "text"

Applies a sparse head to hidden_states[0 … L] of the text (the embeddings, then every layer's output)
and prints a layers × tokens table of the weight each token's own id gets at each layer.
  --head NAME|DIR  m3 (default), m3-log1p, splade, or a head folder written by 'bge-m3 sparse train'
  --html OUT       also write the table as a self-contained heatmap page (refuses to replace OUT
                   unless --force)
  --json           print the lens as one JSON object instead of the table
The same heatmap as a section of the inspection page, beside attention and scores:
  bge-m3 inspect --model DIR --lens m3 "query" ["passage"]
`;

export const run = defineCommand({
  name: 'sparse lens', usage: USAGE, positionals: true,
  options: {
    model: { type: 'string' }, head: { type: 'string' }, html: { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' },
    'max-length': { type: 'string' }, backend: { type: 'string' },
  },
}, async ({ values, positionals, stdout, modelDir, load }) => {
  const dir = modelDir();
  if (positionals.length !== 1) throw new CliError(`give exactly one text (quote it), got ${positionals.length}`, true);
  if (values.html !== undefined && existsSync(values.html) && !values.force) throw new CliError(`${values.html} exists; pass --force to replace it`);
  const maxLength = intFlag(values['max-length'], 'max-length', 2);
  const m3 = await load(dir);
  try {
    const head = await neuralHead(values.head ?? 'm3', m3);
    try {
      const lens = await sparseLens(m3, head, positionals[0]!, { maxLength });
      if (values.html !== undefined) {
        try {
          await writeFileAtomic(values.html, lensHtml(lens));
        } catch (e) {
          throw cannotWrite(values.html, e);
        }
      }
      stdout.write(values.json ? `${JSON.stringify(lens)}\n` : formatLensTable(lens));
    } finally {
      head.dispose();
    }
  } finally {
    m3.dispose();
  }
  return 0;
});
