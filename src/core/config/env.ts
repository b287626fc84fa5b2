/**
 * The environment: the one module of src/ that reads `process.env` (a test in env.test.ts fails
 * when another does). Everything else takes an {@link Env}, so a test passes its own and a worker
 * thread is handed plain values, never the environment.
 */
import type { EnvName } from './settings.js';

/** Environment variables by name, as `process.env` holds them. */
export type Env = Readonly<Record<string, string | undefined>>;

/** This process's environment. */
export const processEnv = (): Env => process.env;

/**
 * A variable of the settings table (settings.ts), or undefined when it is unset or empty: `FOO=`
 * in a unit file or a shell means "not given", never "the empty file name" or "the current directory".
 */
export function envValue(env: Env, name: EnvName): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/**
 * Silences the AWS SDK's warning (once per process, on stderr) that its releases after January
 * 2027 need Node 22: package.json pins the SDK's version, so the warning is for Stele's
 * maintainers, not its operators. The SDK reads the credentials from the environment itself.
 */
export function quietAwsSdk(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}
