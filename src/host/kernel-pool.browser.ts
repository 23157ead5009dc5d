/** kernels/pool.ts in a browser: never constructed, since kernel-feature.browser.ts reports the kernel unavailable. */
import type * as Pool from '../kernels/pool.js';

export const KernelPool = class {
  constructor() {
    throw new Error('the FMA kernel pool needs Node worker_threads');
  }
} as unknown as typeof Pool.KernelPool;
