// A thread of the kernel's pool in a browser: a module Web Worker (started by kernel-host.browser.ts)
// that runs worker-loop.js on the first message, the pool's WorkerInit (the module, the shared
// memory, the control block). From then on it never returns to its event loop: jobs come through
// the shared control block. `npm run build` also bundles this file whole into dist/browser/, next to
// the page bundle, so that a page with no bundler finds it there.
import { serve } from '../kernels/worker-loop.js';

self.onmessage = (e) => {
  self.onmessage = null;
  serve(e.data);
};
