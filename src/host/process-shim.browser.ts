/**
 * kernels/gemm.ts reads `process.env.BGE_M3_KERNEL` when it is imported; a page has no `process`.
 * Imported first by the browser entry, this gives it an empty one (only when there is none, and with
 * no `versions`, so nothing takes the page for Node). To go once the kernels read their switches through a host seam.
 */
const g = globalThis as { process?: { env: Record<string, string | undefined> } };
g.process ??= { env: {} };
export {};
