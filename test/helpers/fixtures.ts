/** Paths of the reference fixtures committed under test/fixtures (copied from the shared reference data). */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
export const CHECKPOINTS = ['tiny-m3', 'small-m3', 'sharp-m3'] as const;
export type Checkpoint = (typeof CHECKPOINTS)[number];
export const checkpointDir = (c: Checkpoint): string => join(FIXTURES, c);
export const expectedDir = (c: Checkpoint): string => join(FIXTURES, 'expected', c);
