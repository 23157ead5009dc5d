/** `bge-m3 convert <snapshot-dir> [--force]`: PyTorch checkpoint files -> safetensors, keys unchanged. */
import { convertSnapshot } from '../weights/convert.js';
import { defineCommand } from './command.js';
import { CliError } from './io.js';
import { createProgress, formatBytes, type Progress } from './progress.js';

export const USAGE = `Usage: bge-m3 convert <snapshot-dir> [--force]

Writes model.safetensors (from pytorch_model.bin) and colbert_linear.safetensors / sparse_linear.safetensors
(from the .pt heads) next to the sources, with the same tensor names and dtypes. Reads one tensor at a time.
Existing targets are not replaced unless --force is given.
`;

export const run = defineCommand({
  name: 'convert', usage: USAGE, positionals: true,
  options: { force: { type: 'boolean' } },
}, async ({ positionals, values, stdout, stderr }) => {
  if (positionals.length !== 1) throw new CliError('give exactly one snapshot directory', true);
  let bar: Progress | undefined;
  try {
    const files = await convertSnapshot(positionals[0]!, {
      force: !!values.force,
      onFile: (_s, target, total) => {
        bar?.stop();
        bar = createProgress(target.split('/').pop()!, total, 'bytes', { stream: stderr });
      },
      onProgress: (n) => bar?.update(n),
    });
    bar?.stop();
    for (const f of files) stdout.write(`${f.target}: ${f.tensors} tensors, ${formatBytes(f.bytes)} (from ${f.source})\n`);
  } finally {
    bar?.stop();
  }
  return 0;
});
