// One thread of the kernel's pool (kernels/pool.ts), whatever starts it: Node's worker.js or the
// browser's host/kernel-worker.browser.js. Instantiates the kernel module on the shared memory, then
// runs jobs until told to quit. Plain JavaScript (an ES module), so that it loads as it is from src/
// (vitest) and from dist/ (tsc copies it there). The words of the control block come from the pool
// in `init.words`, so they are written only there (pool.ts); a failure's text goes to this thread's
// message words of the same block, so that the main thread reads it while it still waits for the job
// (it cannot take a message from its event loop then).

/** Writes `text` (its first words − 1 UTF-16 units) into thread `tid`'s message words. */
function tell(ctl, words, tid, text) {
  const at = words.MESSAGE + tid * words.MESSAGE_WORDS;
  const n = Math.min(text.length, words.MESSAGE_WORDS - 1);
  for (let i = 0; i < n; i++) ctl[at + 1 + i] = text.charCodeAt(i);
  Atomics.store(ctl, at, n);
}

/** Runs thread `tid` of the pool: `init` is what pool.ts sends each worker (see WorkerInit there). */
export function serve(init) {
  const { module, memory, ctl: sab, tid, words, abortOffset, spinMs } = init;
  const ctl = new Int32Array(sab);
  let run;
  try {
    run = new WebAssembly.Instance(module, { env: { memory } }).exports.run;
  } catch (e) {
    tell(ctl, words, tid, `the kernel module did not instantiate: ${String((e && e.message) || e)}`);
    Atomics.store(ctl, words.READY + tid, words.START_FAILED);
    Atomics.notify(ctl, words.READY + tid);
    return;
  }
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
      tell(ctl, words, tid, String((e && e.stack) || e));
      Atomics.store(ctl, words.FAILED + tid, 1);
    }
    Atomics.store(ctl, words.DONE + tid, seq);
    Atomics.notify(ctl, words.DONE + tid);
  }
}
