/**
 * The process environment, read by the core's switches (e.g. `BGE_M3_KERNEL=off`): the Node host.
 * A page has no environment; the browser build takes env.browser.ts (package.json `browser` field).
 */
export function envVar(name: string): string | undefined {
  return process.env[name];
}
