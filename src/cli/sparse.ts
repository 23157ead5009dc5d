/**
 * `bge-m3 sparse <subcommand> [options]`: the sparse-head lab. Dispatches to src/cli/sparse-<sub>.ts,
 * each exporting `run(argv)`, loaded only when used.
 */
import type { CliIO } from './io.js';

const SUBCOMMANDS: Record<string, string> = {
  eval: 'retrieval metrics (nDCG@10, MRR@10, Recall@100, MAP) of a head on a BEIR-layout set',
  cache: 'write the hidden states of a corpus to safetensors shards (resumable, shardable)',
  train: 'train a sparse head on cached hidden states of the frozen encoder',
  lens: 'apply a head to every layer\'s hidden states: a layers × tokens table',
};

export const USAGE = `Usage: bge-m3 sparse <subcommand> [options]   (bge-m3 sparse <subcommand> --help for its options)

Subcommands:
${Object.entries(SUBCOMMANDS).map(([c, d]) => `  ${c.padEnd(8)} ${d}`).join('\n')}
`;

export async function run(argv: string[], io: CliIO = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    (sub === undefined ? stderr : stdout).write(USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (!Object.hasOwn(SUBCOMMANDS, sub)) {
    stderr.write(`bge-m3 sparse: unknown subcommand '${sub}'\n\n${USAGE}`);
    return 2;
  }
  let mod: { run: (argv: string[], io?: CliIO) => Promise<number> };
  try {
    mod = (await import(`./sparse-${sub}.js`)) as typeof mod;
  } catch (e) {
    // A subcommand another part of the lab has not shipped yet: say so rather than crash.
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String((e as Error).message).includes(`sparse-${sub}`)) {
      stderr.write(`bge-m3 sparse: '${sub}' is not available in this build\n`);
      return 1;
    }
    throw e;
  }
  return mod.run(rest, io);
}
