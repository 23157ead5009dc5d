/** The environment in a browser: there is none, so every switch keeps its default (see env.ts). */
import type * as NodeEnv from './env.js';

export const envVar: typeof NodeEnv.envVar = () => undefined;
