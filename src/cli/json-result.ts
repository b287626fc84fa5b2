import { SteleError } from '../core/errors.js';

/**
 * For commands whose --json output CI reads: when `run` fails, print `{"ok": false, "error":
 * {code, message}, ...extra}` on standard output first, then rethrow, so the exit status stays
 * non-zero and standard error still names the problem. Without --json, just runs `run`.
 */
export async function jsonOnFailure<T>(
  json: boolean | undefined,
  run: () => Promise<T>,
  extra: () => object = () => ({}),
): Promise<T> {
  if (!json) return run();
  try {
    return await run();
  } catch (err) {
    const e = err instanceof SteleError ? err : new SteleError('failed', (err as Error).message ?? String(err));
    console.log(JSON.stringify({ ok: false, ...extra(), error: { code: e.code, message: e.message } }));
    throw err;
  }
}
