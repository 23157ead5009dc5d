/**
 * The kernel pool's protocol (kernels/pool.ts + worker-loop.js, shared by Node and browsers) on a toy
 * module: every thread of a job runs, a worker's failure comes back as an error carrying that worker's
 * own message (through the control block, not the event loop), the main thread's failure as itself,
 * and neither leaves the pool broken for the next job.
 */
import initWabt from 'wabt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import layout from '../../src/kernels/job.json' with { type: 'json' };
import { KernelPool } from '../../src/kernels/pool.js';

/** run(job, tid, nth): traps when word 0 of the job is tid + 1; else adds 1 to word 1 (threads that ran). */
const TOY = `(module (import "env" "memory" (memory 1 1 shared))
  (func (export "run") (param $job i32) (param $tid i32) (param $nth i32)
    (if (i32.eq (i32.load (local.get $job)) (i32.add (local.get $tid) (i32.const 1))) (then unreachable))
    (drop (i32.atomic.rmw.add offset=4 (local.get $job) (i32.const 1)))))`;

describe('kernel pool protocol', () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  const words = new Int32Array(memory.buffer);
  let pool: KernelPool;
  beforeAll(async () => {
    const wabt = await initWabt();
    const bytes = wabt.parseWat('toy.wat', TOY, { threads: true }).toBinary({}).buffer;
    pool = new KernelPool(new WebAssembly.Module(bytes), memory, 3);
    await pool.whenStarted();
  });
  afterAll(() => pool?.close());

  /** Runs one job at address 0 on all three threads with thread `fails` (−1: none) trapping; returns how many threads ran. */
  const job = (fails: number): number => {
    words[0] = fails + 1;
    words[1] = 0;
    words[layout.shared.abort / 4] = 0; // as writeJob does: a failed thread sets the job's abort flag
    try {
      pool.exec(0);
    } finally {
      words[0] = 0;
    }
    return words[1]!;
  };

  it('starts every worker, and a job runs on all threads', () => {
    expect(pool.failure()).toBeUndefined();
    expect(job(-1)).toBe(3);
    expect(job(-1)).toBe(3);
  });

  it("a worker's trap is an error naming the worker, with its message; the next job runs", () => {
    expect(() => job(2)).toThrow(/GEMM kernel failed in worker 2: RuntimeError: unreachable/);
    expect(job(-1)).toBe(3);
  });

  it("the main thread's trap is thrown as is (no stale worker error later)", () => {
    expect(() => job(0)).toThrow(/unreachable/);
    expect(job(-1)).toBe(3);
  });

  it('a closed pool refuses jobs', () => {
    pool.close();
    expect(() => pool.exec(0)).toThrow(/kernel pool is closed/);
  });
});
