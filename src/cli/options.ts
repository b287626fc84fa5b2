import type { Command } from 'commander';
/**
 * The token options of every command that calls the API. --token stays for scripts that have the
 * key in hand, but says what it costs: its value is in the process list for every local user.
 */
export function tokenOptions(c: Command, what = 'bearer token'): Command {
  return c
    .option(
      '--token-file <file>',
      `file holding the ${what}, or - to read it from standard input (default: $STELE_TOKEN, $STELE_TOKEN_FILE, or the data directory's admin.token)`,
    )
    .option('--token <token>', `the ${what} itself; visible to other local users in the process list: prefer --token-file`);
}
