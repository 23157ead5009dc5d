/** Runs `script` (an ES module) in a child Node process; resolves with its stdout and the signal it died of (null on a normal exit). */
import { spawn } from 'node:child_process';

export function runScriptInChild(script: string): Promise<{ stdout: string; signal: NodeJS.Signals | null }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  return new Promise((resolve) => child.on('exit', (_, signal) => resolve({ stdout, signal })));
}
