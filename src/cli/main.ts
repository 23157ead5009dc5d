#!/usr/bin/env node
/** `bge-m3 <command> [options]`: dispatches to src/cli/<command>.ts, each exporting `run(argv)`. */
const COMMANDS: Record<string, string> = {
  encode: 'encode texts into dense, sparse (lexical weights) and ColBERT outputs (JSONL)',
  score: 'score queries against passages: dense, sparse, ColBERT and combined matrices',
  demo: 'encode the README example and print its scores',
  inspect: 'write an HTML page showing tokens, attention, ColBERT alignment and lexical matches',
  convert: 'write model.safetensors and the heads as safetensors from a snapshot\'s PyTorch files',
  download: 'download a BAAI/bge-m3 snapshot from the Hugging Face hub',
  bench: 'measure speed and memory (optionally against a PyTorch baseline)',
  sparse: 'the sparse-head lab: eval, cache, train, lens (bge-m3 sparse --help)',
};

const USAGE = `Usage: bge-m3 <command> [options]   (bge-m3 <command> --help for its options)
       bge-m3 --version   (or -V): print the version of bge-m3-tfjs

Commands:
${Object.entries(COMMANDS).map(([c, d]) => `  ${c.padEnd(10)} ${d}`).join('\n')}
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h') {
    process.stdout.write(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === '--version' || cmd === '-V') {
    const { packageVersion } = await import('../package-files.js');
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (!Object.hasOwn(COMMANDS, cmd)) {
    process.stderr.write(`bge-m3: unknown command '${cmd}'\n\n${USAGE}`);
    return 2;
  }
  const mod = (await import(`./${cmd}.js`)) as { run: (argv: string[]) => Promise<number> };
  return mod.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    // Flush stdout before exiting: the wasm backend keeps the event loop alive otherwise.
    process.stdout.write('', () => process.exit(code));
  },
  (e: unknown) => {
    process.stderr.write(`bge-m3: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
