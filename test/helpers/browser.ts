/**
 * A real Chromium (Debian's, driven by playwright-core) for the console's end-to-end tests;
 * `browserProblem` says what is missing when it cannot run.
 */
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';

export const CHROMIUM = process.env.STELE_CHROMIUM ?? '/usr/bin/chromium';

export async function browserProblem(): Promise<string | null> {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
  try {
    await import('playwright-core');
    return null;
  } catch {
    return 'playwright-core is not installed (npm install)';
  }
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}
