/**
 * Reads the reference data: cases.jsonl, expected/<model>/reference.safetensors (per-case activations
 * keyed `<case id>/<activation name>`, no batch axis) and reference.json (lexical weights, scores).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import { BgeM3 } from '../../src/m3.js';
import { join } from 'node:path';
import { openSafetensors, type SafetensorsFile } from '../../src/weights/safetensors.js';
import type { HostTensor } from '../../src/weights/types.js';
import { checkpointDir, FIXTURES, expectedDir, type Checkpoint } from './fixtures.js';

export interface Case {
  id: string;
  text: string;
  max_length: number;
  input_ids: number[];
  attention_mask: number[];
  tokens: string[];
}

export function loadCases(): Case[] {
  return readFileSync(join(FIXTURES, 'cases.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Case);
}

export interface ReferenceJson {
  model: string;
  config: { hidden: number; layers: number; heads: number; intermediate: number; colbert_dim: number };
  cases: Record<string, { num_tokens: number; lexical_weights: Record<string, number> }>;
  scores: {
    queries: string[];
    passages: string[];
    dense: number[][];
    sparse: number[][];
    colbert: number[][];
    weighted: Array<{ weights: [number, number, number]; 'sparse+dense': number[][]; 'colbert+sparse+dense': number[][] }>;
  };
}

export class Reference {
  private constructor(readonly json: ReferenceJson, private readonly st: SafetensorsFile) {}

  static async open(model: Checkpoint): Promise<Reference> {
    const json = JSON.parse(readFileSync(join(expectedDir(model), 'reference.json'), 'utf8')) as ReferenceJson;
    return new Reference(json, await openSafetensors(join(expectedDir(model), 'reference.safetensors')));
  }

  has(caseId: string, name: string): boolean {
    return this.st.has(`${caseId}/${name}`);
  }

  tensor(caseId: string, name: string): Promise<HostTensor> {
    return this.st.readFloat32(`${caseId}/${name}`);
  }

  /** Activation names stored for a case. */
  names(caseId: string): string[] {
    return this.st.keys().filter((k) => k.startsWith(`${caseId}/`)).map((k) => k.slice(caseId.length + 1));
  }

  close(): Promise<void> {
    return this.st.close();
  }
}

/** Max |a − b| over two equal-length arrays (throws on length mismatch). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Max |a − b| of two sparse vectors keyed by id, a missing id counting as 0. */
export function sparseMaxAbsDiff(a: Record<string, number>, b: Record<string, number>): number {
  let m = 0;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) m = Math.max(m, Math.abs((a[k] ?? 0) - (b[k] ?? 0)));
  return m;
}

/** Tracks the largest error seen per label and prints a table at the end. */
export class ErrorLog {
  private readonly worst = new Map<string, number>();
  constructor(private readonly title: string) {}

  add(label: string, err: number): number {
    this.worst.set(label, Math.max(this.worst.get(label) ?? 0, err));
    return err;
  }

  print(): void {
    const rows = [...this.worst].map(([k, v]) => `  ${k.padEnd(48)} ${v.toExponential(2)}`);
    console.log(`${this.title}: max abs error\n${rows.join('\n')}`);
  }
}

/**
 * Loads a fixture checkpoint and its reference for the enclosing describe block (beforeAll/afterAll).
 * Read `ctx.m3` / `ctx.ref` inside tests.
 */
export function useModelAndReference(ckpt: Checkpoint): { m3: BgeM3; ref: Reference } {
  const ctx = {} as { m3: BgeM3; ref: Reference };
  beforeAll(async () => {
    ctx.m3 = await BgeM3.load(checkpointDir(ckpt));
    ctx.ref = await Reference.open(ckpt);
  });
  afterAll(async () => {
    ctx.m3?.dispose();
    await ctx.ref?.close();
  });
  return ctx;
}
