/** `bge-m3 convert <snapshot-dir> [--force]`: PyTorch checkpoint files -> safetensors, keys unchanged. */
import { convertSnapshot } from '../weights/convert.js';
import { CliError, parseCli, runCommand, type CliIO } from './io.js';
import { createProgress, formatBytes, type Progress } from './progress.js';

export const USAGE = `Usage: bge-m3 convert <snapshot-dir> [--force]

Writes model.safetensors (from pytorch_model.bin) and colbert_linear.safetensors / sparse_linear.safetensors
(from the .pt heads) next to the sources, with the same tensor names and dtypes. Reads one tensor at a time.
Existing targets are not replaced unless --force is given.
`;

export async function run(argv: string[], io: CliIO = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  return runCommand('convert', USAGE, io, async () => {
    const { values, positionals } = parseCli(argv, { force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, true);
    if (values.help) {
      stdout.write(USAGE);
      return 0;
    }
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
}
