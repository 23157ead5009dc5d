/**
 * Facts written once: encode's batch limits (ENCODE_LIMITS in src/batches.ts) and the text digest
 * (corpusDigest in src/lab/hidden-cache.ts), the write error's wording. A second copy of either, written by hand, fails here.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ENCODE_LIMITS } from '../src/batches.js';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');

function sources(...parts: string[]): string[] {
  const out: string[] = [];
  const walk = (p: string): void => {
    if (statSync(p).isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
    else if (p.endsWith('.ts')) out.push(p);
  };
  for (const p of parts) walk(join(SRC, p));
  return out;
}

/** Where `pred` holds for a numeric literal of a file: `file:line: code`. */
function numericLiterals(files: string[], pred: (n: ts.NumericLiteral) => boolean): string[] {
  const hits: string[] = [];
  for (const f of files) {
    const sf = ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (n: ts.Node): void => {
      if (ts.isNumericLiteral(n) && pred(n)) {
        const { line } = sf.getLineAndCharacterOfPosition(n.getStart());
        hits.push(`src/${relative(SRC, f)}:${line + 1}: ${n.parent.getText().slice(0, 120)}`);
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return hits;
}

function inDeclarationOf(n: ts.Node, name: string): boolean {
  for (let p: ts.Node | undefined = n; p; p = p.parent) if (ts.isVariableDeclaration(p)) return p.name.getText() === name;
  return false;
}

describe('one home for each fact', () => {
  it("encode's batch limits are written only in src/batches.ts: no 16 / 8192 literal for them in lab, cli, m3.ts, inspect", () => {
    expect(ENCODE_LIMITS).toEqual({ batchSize: 16, maxTokensPerBatch: 8192 });
    const files = sources('lab', 'cli', 'inspect', 'm3.ts');
    const value = (n: ts.NumericLiteral): number => Number(n.text.replace(/_/g, ''));
    // 8192 as a number anywhere (a limit or a default length); the model's default truncation length has its one home in m3.ts's DEFAULTS
    const big = numericLiterals(files, (n) => value(n) === ENCODE_LIMITS.maxTokensPerBatch
      && !(n.getSourceFile().fileName.endsWith('m3.ts') && inDeclarationOf(n, 'DEFAULTS')));
    // 16 as a batch size beside a token limit, or as a fallback for one (`limits … ?? 16`, `{ batchSize: 16, maxTokensPerBatch … }`)
    const small = numericLiterals(files, (n) => {
      if (value(n) !== ENCODE_LIMITS.batchSize) return false;
      const p = n.parent;
      const context = (ts.isBinaryExpression(p) || ts.isPropertyAssignment(p)) ? p.parent.getText() : '';
      return /maxTokensPerBatch|limits|ENCODE_LIMITS/.test(context);
    });
    expect([...big, ...small]).toEqual([]);
  });

  it("the write error's wording (`<path>: cannot write (why)`) is made in one place (src/temp-path.ts)", () => {
    const hits: string[] = [];
    for (const f of sources('.')) {
      readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
        if (line.includes('cannot write (')) hits.push(`src/${relative(SRC, f)}:${i + 1}`);
      });
    }
    expect([...new Set(hits.map((h) => h.replace(/:\d+$/, '')))]).toEqual(['src/temp-path.ts']);
  });

  it('the digest of texts with their ids is computed in one place (src/lab/hidden-cache.ts corpusDigest)', () => {
    const hits: string[] = [];
    for (const f of sources('.')) {
      readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
        if (line.includes('\\u0000${JSON.stringify(')) hits.push(`src/${relative(SRC, f)}:${i + 1}`);
      });
    }
    expect(hits).toHaveLength(1);
    expect(hits[0]).toMatch(/^src\/lab\/hidden-cache\.ts:/);
  });
});
