/** Errors are values at boundaries: decoders and checks return a Result. */
export type Result<T, E = string> = { ok: true; value: T } | { ok: false; error: E };

export const ok = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });
export const err = <E = string>(error: E): { ok: false; error: E } => ({ ok: false, error });

/** Unwraps a Result, throwing on error: for tests and for values known to be valid. */
export function unwrap<T, E>(r: Result<T, E>): T {
  if (r.ok) return r.value;
  throw new Error(String(r.error));
}
