/**
 * Hook points. The forward pass sends every named activation through `point(name, t)`: with no hook
 * and no cache it is the identity; a hook may read the activation or return a replacement (same
 * shape), which then flows on; a cache filter keeps a copy of selected activations past `tf.tidy`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ActivationName } from './names.js';

export interface HookContext {
  /** The activation's name. */
  readonly name: ActivationName;
  /** Encoder layer index, or undefined outside the layers. */
  readonly layer: number | undefined;
}

/** Reads `act` and returns a replacement of the same shape, or nothing to leave it as it is. */
export type HookFn = (act: tf.Tensor, ctx: HookContext) => tf.Tensor | void;

export type NameFilter = ActivationName[] | ((name: ActivationName) => boolean);

export class HookRunner {
  /** Activations kept by the cache filter; owned by the runner's caller (dispose them). */
  readonly cache = new Map<ActivationName, tf.Tensor>();
  private readonly hooks: Map<string, HookFn[]>;
  private readonly cacheFilter: (name: ActivationName) => boolean;

  constructor(opts: { hooks?: Partial<Record<ActivationName, HookFn | HookFn[]>>; cache?: NameFilter } = {}) {
    this.hooks = new Map();
    for (const [name, fn] of Object.entries(opts.hooks ?? {})) {
      if (fn) this.hooks.set(name, Array.isArray(fn) ? fn : [fn as HookFn]);
    }
    const c = opts.cache;
    this.cacheFilter = c === undefined ? () => false : typeof c === 'function' ? c : ((s) => (n) => s.has(n))(new Set(c));
  }

  /** True when a hook or the cache wants `name`, so the forward must materialise it. */
  wants(name: ActivationName): boolean {
    return this.hooks.has(name) || this.cacheFilter(name);
  }

  point<T extends tf.Tensor>(name: ActivationName, t: T): T {
    let out: tf.Tensor = t;
    const fns = this.hooks.get(name);
    if (fns) {
      const layerMatch = /^encoder\.layer\.(\d+)\./.exec(name);
      const ctx: HookContext = { name, layer: layerMatch ? Number(layerMatch[1]) : undefined };
      for (const fn of fns) {
        const r = fn(out, ctx);
        // The activation still belongs to the forward pass (later stages and tf.tidy read it): a hook
        // that disposes it would otherwise surface as an opaque "reading 'backend'" error downstream.
        if (out.isDisposed) {
          throw new Error(`hook on '${name}' disposed the activation it was given; hooks must not dispose their input (return a new tensor to replace it)`);
        }
        if (r === undefined) continue;
        if (!(r instanceof tf.Tensor)) throw new Error(`hook on '${name}' returned ${typeof r}, expected a tf.Tensor or nothing`);
        if (r.isDisposed) throw new Error(`hook on '${name}' returned a disposed tensor`);
        if (!tf.util.arraysEqual(r.shape, out.shape)) {
          throw new Error(`hook on '${name}' returned shape [${r.shape}], expected [${out.shape}]`);
        }
        out = r.dtype === out.dtype ? r : tf.cast(r, out.dtype);
      }
    }
    if (this.cacheFilter(name)) {
      this.cache.get(name)?.dispose();
      this.cache.set(name, tf.keep(tf.clone(out)));
    }
    return out as T;
  }
}

/** The runner used when nobody looks inside: identity everywhere, nothing cached. */
export const NO_HOOKS = new HookRunner();
