/**
 * The skeleton every `bge-m3` command runs in: its streams (injectable for tests), its option table
 * parsed strictly (plus `--help`/`-h`, which prints the usage and exits 0), `--model` and `--backend`
 * checked the same way everywhere, the model loaded with warnings on stderr, and errors turned into
 * `bge-m3 <name>: message` with exit 2 for a usage error (the usage follows) and 1 for anything else.
 */
import type { ParseArgsConfig } from 'node:util';
import type { BackendName } from '../backend.js';
import type { BgeM3, LoadOptions } from '../m3.js';
import { backendFlag, CliError, parseCli, runCommand, type CliIO } from './io.js';

type Options = NonNullable<ParseArgsConfig['options']>;
const HELP = { help: { type: 'boolean', short: 'h' } } as const;

export interface CommandSpec<O extends Options> {
  /** The name in messages: `encode`, `sparse lens`. */
  readonly name: string;
  readonly usage: string;
  /** The command's flags (one table; `--help` is added). */
  readonly options: O;
  /** Whether it takes TEXT (or other) arguments. */
  readonly positionals?: boolean;
}

/** What a command's body gets: its parsed flags and arguments, its streams, and the shared flag readers. */
export interface CommandContext<V> {
  readonly values: V;
  readonly positionals: string[];
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Writes `warning: message` on stderr. */
  warn(message: string): void;
  /** `--model`, required: a usage error when it is missing or blank. */
  modelDir(): string;
  /** `--backend`, checked against the backends there are before the body runs (undefined when not given). */
  readonly backend: BackendName | undefined;
  /** Loads a model with `--backend` and warnings on stderr. */
  load(dir: string, opts?: Omit<LoadOptions, 'backend' | 'onWarning'>): Promise<BgeM3>;
}

type Parsed<O extends Options> = ReturnType<typeof parseCli<O & typeof HELP>>;

/** A command's `run(argv, io)`: the skeleton around `body`, which returns the exit code (0 when nothing). */
export function defineCommand<const O extends Options, IO extends CliIO = CliIO>(
  spec: CommandSpec<O>,
  body: (cmd: CommandContext<Parsed<O>['values']>, io: IO) => Promise<number | void>,
): (argv: string[], io?: IO) => Promise<number> {
  return (argv, io = {} as IO) => {
    const stdout = io.stdout ?? process.stdout;
    const stderr = io.stderr ?? process.stderr;
    return runCommand(spec.name, spec.usage, io, async () => {
      const { values, positionals } = parseCli(argv, { ...spec.options, ...HELP } as O & typeof HELP, spec.positionals ?? false);
      const flags = values as Record<string, unknown>;
      if (flags.help) {
        stdout.write(spec.usage);
        return 0;
      }
      const backend = backendFlag(flags.backend as string | undefined); // a usage error before any work
      const warn = (message: string): void => void stderr.write(`warning: ${message}\n`);
      return body({
        values, positionals, stdout, stderr, warn, backend,
        modelDir() {
          const dir = flags.model as string | undefined;
          if (!dir?.trim()) throw new CliError('--model DIR is required', true);
          return dir;
        },
        async load(dir, opts = {}) {
          const { BgeM3 } = await import('../m3.js'); // only when a model is needed: --help and usage errors stay fast
          return BgeM3.load(dir, { ...opts, backend, onWarning: warn });
        },
      }, io);
    });
  };
}
