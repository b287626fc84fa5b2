/**
 * The one place the CLI shows an error: `stele: <message>` on standard error for a SteleError (a
 * problem the user can act on), the stack for anything else (a bug), and, for commands whose
 * --json output CI reads, the same code and message as JSON on standard output.
 */
import { asSteleError, SteleError } from '../core/errors.js';

/** `{code, message}` of any error, as --json output carries it. A non-SteleError is 'failed'. */
export function errorJson(err: unknown): { code: string; message: string } {
  if (err instanceof SteleError) return { code: err.code, message: err.message };
  return { code: 'failed', message: asSteleError(err).message };
}

/** Prints a command's failure on standard error (the exit status is the caller's). */
export function printError(err: unknown): void {
  if (err instanceof SteleError) console.error(`stele: ${err.message}`);
  else console.error(`stele: ${(err as Error).stack ?? String(err)}`);
}

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
    console.log(JSON.stringify({ ok: false, ...extra(), error: errorJson(err) }));
    throw err;
  }
}
