/**
 * The kernel's threads: the calling (main) thread plus `threads − 1` workers, all running the same
 * GEMM module on the tfjs-wasm backend's shared `WebAssembly.Memory`. The same in Node and in
 * browsers: the host (host/kernel-host.ts, Node `worker_threads`; kernel-host.browser.ts, module Web
 * Workers) only starts a worker and reports one that cannot load; each worker runs worker-loop.js.
 *
 * A job is handed over through a small SharedArrayBuffer `ctl` (no postMessage per call, which
 * would cost a trip through the event loop): the main thread writes the job's address, bumps the
 * sequence number and wakes the workers with Atomics.notify; every thread runs `run(job, tid, nth)`
 * (which waits for its packing to finish before computing); the main thread then waits for each
 * worker's "done" word. A worker's failure is written, as text, into its message words of `ctl`.
 *
 * Waiting: a thread that may block (Node's main thread, any worker) sleeps in Atomics.wait after a
 * short spin; a page's main thread may not (Atomics.wait throws there), so it spins on Atomics.load.
 * Starting: workers start asynchronously, and a browser may not start one while the page's main
 * thread is busy, so `whenStarted()` is awaited before the first job where it can be (the browser's
 * wasm set-up does). Until then `exec` waits (up to START_TIMEOUT_S) for the workers where the caller
 * may block, and elsewhere runs the job on the threads that are ready: it never waits for a worker
 * that cannot start.
 */
import { spawnKernelWorker } from '../host/kernel-host.js';
import layout from './job.json' with { type: 'json' };
import { MAX_THREADS } from './job.js';

/** Words of `ctl` (each worker gets them in its WorkerInit, so they are written only here). */
const WORDS = {
  SEQ: 0, // bumped once per job
  JOB: 1, // the job struct's address in the heap
  NTH: 2, // threads of this job
  QUIT: 3, // set to stop the workers
  DONE: 4, // DONE + tid: the last sequence number worker tid finished
  FAILED: 16, // FAILED + tid: 1 when worker tid threw (its message words say why)
  READY: 24, // READY + tid: 1 once worker tid has instantiated the module, START_FAILED if it could not
  START_FAILED: 2, // (a value of READY + tid, not a word)
  MESSAGE: 32, // MESSAGE + tid · MESSAGE_WORDS: length, then the UTF-16 units of worker tid's last failure
  MESSAGE_WORDS: 256,
} as const;
const { SEQ, JOB, NTH, QUIT, DONE, FAILED, READY, START_FAILED, MESSAGE, MESSAGE_WORDS } = WORDS;
const CTL_WORDS = MESSAGE + MAX_THREADS * MESSAGE_WORDS;
/** Byte offset of the job's abort flag (job.json), set by a thread that fails so that no other waits for it. */
const ABORT = layout.shared.abort;
/** Byte offset of the job's flag telling the kernel that the calling thread (tid 0) may not block (see gemm.wat $await_packing). */
const CALLER_SPINS = layout.shared.callerSpins;
/** Seconds a new worker may take to start before the pool is called broken. */
const START_TIMEOUT_S = 30;

/** Milliseconds an idle worker (or the main thread waiting for one) spins before it sleeps. */
const SPIN_MS = 0.3;

/** Seconds the main thread waits for a worker before calling the pool broken. */
const WORKER_TIMEOUT_S = 120;

/** What a worker is started with (worker-loop.js `serve`). */
export interface WorkerInit {
  module: WebAssembly.Module; memory: WebAssembly.Memory; ctl: SharedArrayBuffer; tid: number;
  words: typeof WORDS; abortOffset: number; spinMs: number;
}

/** A started worker, as the host hands it back. */
export interface KernelWorker { terminate(): void }

/** May this thread block in Atomics.wait? Not a page's main thread (it throws there); Node's and any worker's may. */
const CAN_BLOCK = (() => {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0); // 'not-equal' at once where allowed
    return true;
  } catch {
    return false;
  }
})();

type Run = (job: number, tid: number, nth: number) => void;

export class KernelPool {
  private readonly ctl = new Int32Array(new SharedArrayBuffer(4 * CTL_WORDS));
  private readonly workers: KernelWorker[] = [];
  private readonly run: Run;
  private closed = false;
  private started = false;
  /** Set when the host reported a worker that could not load or died (the pool then runs on the threads that are ready). */
  private hostFailure: string | undefined;

  constructor(module: WebAssembly.Module, readonly memory: WebAssembly.Memory, readonly threads: number) {
    if (threads < 1 || threads > MAX_THREADS) throw new RangeError(`kernel pool: threads must be in [1, ${MAX_THREADS}], got ${threads}`);
    this.run = (new WebAssembly.Instance(module, { env: { memory } }).exports as { run: Run }).run;
    for (let tid = 1; tid < threads; tid++) {
      const init: WorkerInit = { module, memory, ctl: this.ctl.buffer as SharedArrayBuffer, tid, words: WORDS, abortOffset: ABORT, spinMs: SPIN_MS };
      this.workers.push(spawnKernelWorker(init, (message) => { this.hostFailure ??= message; }));
    }
  }

  /** Why a worker could not start (or died), if one could not; undefined while all are well. */
  failure(): string | undefined {
    if (this.hostFailure) return this.hostFailure;
    for (let tid = 1; tid < this.threads; tid++) {
      if (Atomics.load(this.ctl, READY + tid) === START_FAILED) return `worker ${tid}: ${this.message(tid)}`;
    }
    return undefined;
  }

  /**
   * Resolves once every worker has started; rejects, closing the pool, when one cannot (naming it and
   * why) or after START_TIMEOUT_S. Polls, so it may run on a page's main thread.
   */
  async whenStarted(): Promise<void> {
    const t0 = performance.now();
    for (;;) {
      if (this.closed) throw new Error('kernel pool is closed');
      const failure = this.failure();
      if (failure) {
        this.close();
        throw new Error(`GEMM kernel: ${failure}; the kernel pool was closed`);
      }
      if (this.readyThreads() === this.threads) {
        this.started = true;
        return;
      }
      if (performance.now() - t0 > START_TIMEOUT_S * 1000) {
        this.close();
        throw new Error(`GEMM kernel: worker ${this.readyThreads()} did not start within ${START_TIMEOUT_S} s; the kernel pool was closed`);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /**
   * Runs the job at heap address `job` on `threads` threads (default all); returns when all are done.
   * Small jobs should ask for 1: waking a worker costs microseconds on an idle machine and
   * milliseconds on a busy one.
   */
  exec(job: number, threads = this.threads): void {
    if (this.closed) throw new Error('kernel pool is closed');
    let nth = Math.max(1, Math.min(this.threads, threads));
    if (nth > 1 && !this.started) nth = this.startedThreads(nth);
    if (nth === 1) {
      this.run(job, 0, 1);
      return;
    }
    const c = this.ctl;
    new Int32Array(this.memory.buffer)[(job + CALLER_SPINS) >>> 2] = CAN_BLOCK ? 0 : 1; // published by the SEQ bump below
    Atomics.store(c, JOB, job);
    Atomics.store(c, NTH, nth);
    const seq = Atomics.add(c, SEQ, 1) + 1;
    Atomics.notify(c, SEQ);
    let mine: unknown;
    try {
      this.run(job, 0, nth);
    } catch (e) {
      Atomics.store(new Int32Array(this.memory.buffer), (job + ABORT) >>> 2, 1); // abort the job: no worker waits for this thread's panels
      mine = e;
    }
    for (let tid = 1; tid < nth; tid++) this.waitDone(tid, seq);
    if (mine) {
      for (let tid = 1; tid < nth; tid++) Atomics.store(c, FAILED + tid, 0); // reported as this thread's error
      throw mine;
    }
    if (Atomics.load(new Int32Array(this.memory.buffer), (job + ABORT) >>> 2)) {
      // set by a thread that failed or gave up waiting for the packing: the output is incomplete
      const failed = [...Array(nth - 1).keys()].map((i) => i + 1).filter((tid) => Atomics.load(c, FAILED + tid));
      if (failed.length === 0) throw new Error('GEMM kernel: the packing did not finish within ~60 s (a thread stopped); the job was aborted');
    }
    for (let tid = 1; tid < nth; tid++) {
      if (Atomics.exchange(c, FAILED + tid, 0)) throw new Error(`GEMM kernel failed in worker ${tid}: ${this.message(tid)}`);
    }
  }

  /** Threads ready for a job: the main thread and workers 1, 2, … that have started, in a row. */
  private readyThreads(): number {
    let n = 1;
    while (n < this.threads && Atomics.load(this.ctl, READY + n) === 1) n++;
    return n;
  }

  /**
   * The threads a job of `nth` may use before `whenStarted` resolved: where this thread may block,
   * all `nth` once they have started (waiting up to START_TIMEOUT_S; a worker that cannot start closes
   * the pool); elsewhere those ready now (a page's main thread cannot wait for a worker to start).
   */
  private startedThreads(nth: number): number {
    if (!CAN_BLOCK) return Math.min(nth, this.readyThreads());
    const t0 = performance.now();
    while (this.readyThreads() < nth) {
      const failure = this.failure();
      if (failure || performance.now() - t0 > START_TIMEOUT_S * 1000) {
        this.close();
        throw new Error(`GEMM kernel: ${failure ?? `worker ${this.readyThreads()} did not start within ${START_TIMEOUT_S} s`}; the kernel pool was closed`);
      }
      Atomics.wait(this.ctl, READY + this.readyThreads(), 0, 50);
    }
    if (nth === this.threads) this.started = true;
    return nth;
  }

  /** Waits for worker `tid` to finish job `seq`: spins briefly, then sleeps where this thread may (else spins on). */
  private waitDone(tid: number, seq: number): void {
    const c = this.ctl;
    const t0 = performance.now();
    for (let i = 1; Atomics.load(c, DONE + tid) !== seq; i++) {
      if ((i & 255) !== 0) continue;
      const waited = performance.now() - t0;
      if (waited > WORKER_TIMEOUT_S * 1000) {
        this.close();
        throw new Error(`GEMM kernel: worker ${tid} did not finish within ${WORKER_TIMEOUT_S} s; the kernel pool was closed`);
      }
      const done = Atomics.load(c, DONE + tid);
      if (CAN_BLOCK && waited > SPIN_MS && done !== seq) Atomics.wait(c, DONE + tid, done, 100);
    }
  }

  /** Worker `tid`'s last failure message (worker-loop.js writes it). */
  private message(tid: number): string {
    const at = MESSAGE + tid * MESSAGE_WORDS;
    const n = Atomics.load(this.ctl, at);
    return String.fromCharCode(...this.ctl.subarray(at + 1, at + 1 + n)) || 'no message';
  }

  /** Stops the workers (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, QUIT, 1);
    Atomics.add(this.ctl, SEQ, 1);
    Atomics.notify(this.ctl, SEQ);
    for (const w of this.workers) w.terminate();
  }
}
