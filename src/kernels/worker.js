// A thread of the kernel's pool in Node: a worker_threads module that runs worker-loop.js on the
// workerData the pool's Node host (host/kernel-host.ts) started it with. Plain JavaScript, so that it
// loads as it is from src/ (vitest) and from dist/ (tsc copies it there: tsconfig's allowJs).
import { workerData } from 'node:worker_threads';
import { serve } from './worker-loop.js';

serve(workerData);
