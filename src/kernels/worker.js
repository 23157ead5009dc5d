// One thread of the kernel's pool (kernels/pool.ts): instantiates the kernel module on the shared
// memory, then runs jobs until told to quit. Plain JavaScript (an ES module), so that it loads as it
// is from src/ (vitest) and from dist/ (tsc copies it there: tsconfig's allowJs), next to pool.js:
// `new Worker(new URL('./worker.js', import.meta.url))`. The words of the control block and the job
// struct's abort offset come from the pool in workerData, so they are written only there.
import { workerData } from 'node:worker_threads';

const { module, memory, ctl: sab, tid, port, words, abortOffset, spinMs } = workerData;
const ctl = new Int32Array(sab);
const { run } = new WebAssembly.Instance(module, { env: { memory } }).exports;
Atomics.store(ctl, words.READY + tid, 1);
Atomics.notify(ctl, words.READY + tid);
let seen = 0;
for (;;) {
  // Spin a little before sleeping: the forward's next job usually comes within microseconds, and a
  // sleeping thread takes 15-100 us to wake (more on a busy machine).
  for (let i = 0, t0 = performance.now(); Atomics.load(ctl, words.SEQ) === seen; i++) {
    if ((i & 255) === 255 && performance.now() - t0 > spinMs) break;
  }
  Atomics.wait(ctl, words.SEQ, seen);
  const seq = Atomics.load(ctl, words.SEQ);
  if (seq === seen) continue;
  seen = seq;
  if (Atomics.load(ctl, words.QUIT)) break;
  const job = Atomics.load(ctl, words.JOB);
  try {
    run(job, tid, Atomics.load(ctl, words.NTH));
  } catch (e) {
    Atomics.store(new Int32Array(memory.buffer), (job + abortOffset) >>> 2, 1); // abort: nobody waits for this thread
    Atomics.store(ctl, words.FAILED + tid, 1);
    port.postMessage(String((e && e.stack) || e));
  }
  Atomics.store(ctl, words.DONE + tid, seq);
  Atomics.notify(ctl, words.DONE + tid);
}
