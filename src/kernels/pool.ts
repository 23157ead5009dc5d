/**
 * The kernel's threads: the calling (main) thread plus `threads − 1` workers, all running the same
 * GEMM module on the tfjs-wasm backend's shared `WebAssembly.Memory`.
 *
 * A job is handed over through a small SharedArrayBuffer `ctl` (no postMessage per call, which
 * would cost a trip through the event loop): the main thread writes the job's address, bumps the
 * sequence number and wakes the workers with Atomics.notify; every thread runs `run(job, tid, nth)`
 * (which waits for its packing to finish before computing); the main thread then Atomics.waits for
 * each worker's "done" word. Workers are unref'd (they never keep the process alive) and stop on
 * `close()`.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import layout from './job.json' with { type: 'json' };
import { MAX_THREADS } from './job.js';

/** Words of `ctl` (the worker, worker.js, gets them in its workerData). */
const WORDS = {
  SEQ: 0, // bumped once per job
  JOB: 1, // the job struct's address in the heap
  NTH: 2, // threads of this job
  QUIT: 3, // set to stop the workers
  DONE: 4, // DONE + tid: the last sequence number worker tid finished
  FAILED: 16, // FAILED + tid: 1 when worker tid threw (its message is posted)
  READY: 24, // READY + tid: 1 once worker tid has instantiated the module
} as const;
const { SEQ, JOB, NTH, QUIT, DONE, FAILED, READY } = WORDS;
const CTL_WORDS = 32;
/** Byte offset of the job's abort flag (job.json), set by a thread that fails so that no other waits for it. */
const ABORT = layout.shared.abort;
/** Seconds a new worker may take to start before the pool is called broken. */
const START_TIMEOUT_S = 30;

/** Milliseconds an idle worker (or the main thread waiting for one) spins before it sleeps. */
const SPIN_MS = 0.3;

/** Seconds the main thread waits for a worker before calling the pool broken. */
const WORKER_TIMEOUT_S = 120;

/** The worker's module file: plain JavaScript beside this file, in src/ and (copied by tsc) in dist/. */
const WORKER_URL = new URL('./worker.js', import.meta.url);

type Run = (job: number, tid: number, nth: number) => void;

export class KernelPool {
  private readonly ctl = new Int32Array(new SharedArrayBuffer(4 * CTL_WORDS));
  private readonly workers: Worker[] = [];
  private readonly run: Run;
  private readonly ports: MessagePort[] = [];
  private closed = false;

  constructor(module: WebAssembly.Module, readonly memory: WebAssembly.Memory, readonly threads: number) {
    if (threads < 1 || threads > MAX_THREADS) throw new RangeError(`kernel pool: threads must be in [1, ${MAX_THREADS}], got ${threads}`);
    this.run = (new WebAssembly.Instance(module, { env: { memory } }).exports as { run: Run }).run;
    for (let tid = 1; tid < threads; tid++) {
      // Errors come back on a port the main thread reads synchronously (it is blocked in exec meanwhile).
      const { port1, port2 } = new MessageChannel();
      // execArgv []: the parent's flags (a test runner's loaders, `node -e`'s --input-type) are not the worker's.
      const w = new Worker(WORKER_URL, {
        execArgv: [],
        workerData: { module, memory, ctl: this.ctl.buffer, tid, port: port2, words: WORDS, abortOffset: ABORT, spinMs: SPIN_MS },
        transferList: [port2],
      });
      w.on('error', () => { /* reported through FAILED and the port */ });
      w.unref();
      port1.unref();
      this.ports.push(port1);
      this.workers.push(w);
    }
  }

  /**
   * Runs the job at heap address `job` on `threads` threads (default all); returns when all are done.
   * Small jobs should ask for 1: waking a worker costs microseconds on an idle machine and
   * milliseconds on a busy one.
   */
  exec(job: number, threads = this.threads): void {
    if (this.closed) throw new Error('kernel pool is closed');
    const nth = Math.max(1, Math.min(this.threads, threads));
    if (nth === 1) {
      this.run(job, 0, 1);
      return;
    }
    const c = this.ctl;
    if (!this.started) this.awaitStart();
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
    for (let tid = 1; tid < nth; tid++) {
      const t0 = Date.now();
      const s0 = performance.now();
      for (let i = 1; Atomics.load(c, DONE + tid) !== seq; i++) { // spin briefly, as the workers do
        if ((i & 255) === 0 && performance.now() - s0 > SPIN_MS) break;
      }
      for (;;) {
        const done = Atomics.load(c, DONE + tid);
        if (done === seq) break;
        if (Date.now() - t0 > WORKER_TIMEOUT_S * 1000) {
          this.close();
          throw new Error(`GEMM kernel: worker ${tid} did not finish within ${WORKER_TIMEOUT_S} s; the kernel pool was closed`);
        }
        Atomics.wait(c, DONE + tid, done, 100);
      }
    }
    if (mine) throw mine;
    if (Atomics.load(new Int32Array(this.memory.buffer), (job + ABORT) >>> 2)) {
      // set by a thread that failed or gave up waiting for the packing: the output is incomplete
      const failed = [...Array(nth - 1).keys()].map((i) => i + 1).filter((tid) => Atomics.load(c, FAILED + tid));
      if (failed.length === 0) throw new Error('GEMM kernel: the packing did not finish within ~60 s (a thread stopped); the job was aborted');
    }
    for (let tid = 1; tid < nth; tid++) {
      if (Atomics.exchange(c, FAILED + tid, 0)) {
        const msg = receiveMessageOnPort(this.ports[tid - 1]!)?.message as string | undefined;
        throw new Error(`GEMM kernel failed in worker ${tid}: ${msg ?? 'no message'}`);
      }
    }
  }

  private started = false;

  /** Waits (once) until every worker has its module instance; a worker that cannot start closes the pool. */
  private awaitStart(): void {
    const t0 = Date.now();
    for (let tid = 1; tid < this.threads; tid++) {
      while (Atomics.load(this.ctl, READY + tid) !== 1) {
        if (Date.now() - t0 > START_TIMEOUT_S * 1000) {
          this.close();
          throw new Error(`GEMM kernel: worker ${tid} did not start within ${START_TIMEOUT_S} s; the kernel pool was closed`);
        }
        Atomics.wait(this.ctl, READY + tid, 0, 50);
      }
    }
    this.started = true;
  }

  /** Stops the workers (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, QUIT, 1);
    Atomics.add(this.ctl, SEQ, 1);
    Atomics.notify(this.ctl, SEQ);
    for (const w of this.workers) void w.terminate();
    for (const p of this.ports) p.close();
  }
}
