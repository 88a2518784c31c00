/**
 * Options with defaults, where "not given" includes `undefined`.
 *
 * The spread idiom `{ intervalMs: 2000, ...options }` lets an option that is
 * present but undefined replace the default with undefined — and callers
 * that pass their own optional setting through (`{ intervalMs:
 * this.opts.livenessMs }`) write exactly that. A timer given undefined fires
 * at once, which turned the connector's 2 s tunnel probe into a tight loop.
 * Use this instead of a spread wherever defaults meet options.
 */

/** `T` with the keys `K` filled in (never undefined). */
export type Defaulted<T, K extends keyof T> = Omit<T, K> & { [P in K]-?: Exclude<T[P], undefined> };

/** A copy of `options` where every key of `defaults` that is absent or undefined takes the default. */
export function withDefaults<T extends object, K extends keyof T>(
  options: T,
  defaults: { [P in K]: Exclude<T[P], undefined> },
): Defaulted<T, K> {
  const out = { ...options } as Record<PropertyKey, unknown>;
  for (const k of Object.keys(defaults) as (K & string)[]) {
    if (out[k] === undefined) out[k] = defaults[k];
  }
  return out as Defaulted<T, K>;
}
