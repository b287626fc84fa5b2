/**
 * The console (issue 16) in a real Chromium against a real `stele serve`: sign-in, search with the
 * query language, errors at their position, the results table, verification in the browser (and
 * a tampered proof shown red), export, keyboard use, an auditor who must not see a restricted
 * tier, axe-core's accessibility checks, a phone-sized screen, and what the first load weighs.
 * STELE_SCREENSHOTS=1 writes the screenshots of docs/console/.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { browserProblem, launchChromium } from './helpers/browser.js';
import { CONSOLE_CLIENT, type Idp, startIdp } from './helpers/idp.js';
import { freePort } from './helpers/rgw.js';
import {
  appendHttp,
  cleanup,
  type DataDir,
  getJson,
  initDir,
  makeEvent,
  requestJson,
  SteleServer,
  tempDir,
} from './helpers/stele.js';

const problem = await browserProblem();
if (problem !== null && process.env.CI === 'true')
  test('the console in Chromium', () => assert.fail(`CI must run it: ${problem}`));

const SHOTS =
  process.env.STELE_SCREENSHOTS === '1' ? fileURLToPath(new URL('../../docs/console/', import.meta.url)) : tempDir('shots-');
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

/** Bytes on the wire for `path` when the client takes gzip. */
function wireBytes(url: string): Promise<{ status: number; bytes: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            bytes: Buffer.concat(chunks).length,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
      })
      .on('error', reject);
  });
}

describe('the console in Chromium', { skip: problem ?? false, timeout: 300_000 }, () => {
  let data: DataDir;
  let srv: SteleServer;
  let browser: Browser;
  let auditorKey: string;
  let commits: number;
  let subjectEntry: number;

  before(async () => {
    data = await initDir('console.test/log');
    writeFileSync(
      join(data.dir, 'stele.policy.yaml'),
      `version: 1
retention:
  default: general
  tiers:
    - name: restricted
      keep: forever
      match: { actions: ['hr.*'] }
    - name: general
      keep: forever
      match: { actions: ['*'] }
roles:
  admin: { actions: [append, read, search, export, erase, hold, admin, metrics], vouch: ['*'] }
  auditor: { actions: [read, search, export], tiers: [general] }
`,
    );
    srv = await SteleServer.start(data.dir, { checkpointIntervalMs: 50 });
    // Spread over an hour ten minutes ago, so the histogram has a shape.
    const start = Date.now() - 70 * 60_000;
    const events: Record<string, unknown>[] = Array.from({ length: 300 }, (_, i) => ({
      time: new Date(start + i * 12_000).toISOString(),
      actor: {
        id: ['alice@example.com', 'bob@example.com', 'carol@example.com', 'dmitri@example.com', 'eve@example.com'][(i * 7) % 5],
        type: 'human',
      },
      action: i % 15 === 0 ? 'hr.review.read' : ['git.commit', 'k8s.configmaps.update', 'emacs.package.install'][i % 3],
      source: { kind: 'test', host: `host-${i % 4}` },
      resource: { type: 'repo', id: `example/repo-${i % 7}` },
      outcome: i % 11 === 0 ? 'failure' : 'success',
      data: { n: i, message: `change number ${i}` },
    }));
    events.push(
      {
        ...(events[1] as Record<string, unknown>),
        action: 'hr.profile.update',
        subject: 'user:zoe@example.com',
        data: { field: 'address' },
      },
      {
        actor: { id: 'agent:copilot', type: 'ai_agent', on_behalf_of: 'alice@example.com' },
        action: 'git.commit',
        source: { kind: 'test', host: 'ci' },
        resource: { type: 'repo', id: 'example/repo-1' },
        outcome: 'success',
        data: { message: 'refactor written by the agent' },
      },
    );
    const appended = await appendHttp(srv.url, data.token, events, 'array');
    subjectEntry = appended.at(-2)?.index as number;
    const key = await requestJson(`${srv.url}/v1/keys`, 'POST', data.token, { name: 'auditor', roles: ['auditor'] });
    assert.equal(key.status, 201, key.text);
    auditorKey = key.body.key as string;
    const all = await getJson<{ hits: unknown[] }>(
      `${srv.url}/v1/events?q=${encodeURIComponent('action:git.commit')}&limit=1000&after=${appended.at(-1)?.index}`,
      30_000,
      data.token,
    );
    commits = all.hits.length;
    browser = await launchChromium();
    mkdirSync(SHOTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await srv?.kill();
    await cleanup();
  });

  async function signedIn(
    key: string,
    viewport = { width: 1280, height: 720 },
    opts: { bypassCSP?: boolean } = {},
  ): Promise<Page> {
    const page = await (await browser.newContext({ viewport, acceptDownloads: true, ...opts })).newPage();
    await page.goto(`${srv.url}/`);
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('search query').waitFor();
    return page;
  }

  async function search(page: Page, q: string): Promise<void> {
    await page.getByLabel('search query').fill(q);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.locator(`.status[data-state=done][data-query="${q.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"]`).waitFor();
  }

  test('is served at / with a strict Content-Security-Policy, and its first load is under 250 KB compressed', async () => {
    const page = await wireBytes(`${srv.url}/`);
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/, 'no inline or remote scripts');
    assert.match(csp, /frame-ancestors 'none'/);
    const { gunzipSync } = await import('node:zlib');
    const html = (page.headers['content-encoding'] === 'gzip' ? gunzipSync(page.body) : page.body).toString('utf8');
    const assets = [...html.matchAll(/(?:src|href)="(\/console\/[^"]+)"/g)].map((m) => m[1] as string);
    assert.equal(assets.length, 2, html);
    let total = page.bytes;
    for (const a of assets) {
      const r = await wireBytes(`${srv.url}${a}`);
      assert.equal(r.headers['content-encoding'], 'gzip');
      assert.match(String(r.headers['cache-control']), /immutable/);
      total += r.bytes;
    }
    assert.ok(total < 250 * 1024, `first load ${total} bytes`);
    for (const path of ['..%2f..%2fpackage.json', 'index.html', 'lib', 'lib%2fverify.js'])
      assert.equal(
        (await wireBytes(`${srv.url}/console/${path}`)).status,
        404,
        `/console/${path}: only the built scripts and styles`,
      );
    for (const a of assets) {
      const r = await wireBytes(`${srv.url}${a}`);
      assert.match(String(r.headers['content-security-policy']), /default-src 'none'/, `${a} has the CSP too`);
    }
  });

  test('a key that is not accepted is told so; the admin signs in and a search shows what the API finds', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${srv.url}/`);
    await page.getByLabel('API key').fill('stele_not-a-real-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor();
    await page.close();

    const p = await signedIn(data.token);
    await search(p, 'action:git.commit');
    assert.equal(
      await p
        .locator('.status')
        .innerText()
        .then((t) => Number.parseInt(t, 10)),
      commits,
    );
    assert.equal(await p.locator('.paint .t-field').first().innerText(), 'action:', 'the field is coloured as a field');
    assert.match(p.url(), /#\/search\?q=action%3Agit.commit/, 'the query is in the URL, to share');
    // Only the rows in view are rendered.
    const rendered = await p.locator('[role=row][data-index]').count();
    assert.ok(rendered > 10 && rendered < commits, `${rendered} rows rendered of ${commits}`);
    await p.screenshot({ path: join(SHOTS, 'search.png') });
    await p.context().close();
  });

  test('a query that does not parse shows the server’s message and marks where', async () => {
    const p = await signedIn(data.token);
    await search(p, 'outcome:success actor:(');
    await p.locator('#query-error').waitFor();
    assert.match(await p.locator('#query-error').innerText(), /column \d+/);
    assert.equal(await p.locator('.paint .t-bad').count(), 1, 'the token at the error position is marked');
    assert.equal(await p.getByLabel('search query').getAttribute('aria-invalid'), 'true');
    await p.context().close();
  });

  test('Verify checks the entry in the browser: green for the real proof, red for a tampered one', async () => {
    const p = await signedIn(data.token);
    await search(p, 'action:git.commit');
    await p.locator('[role=row][data-index]').first().click();
    await p.getByRole('button', { name: 'Verify in this browser' }).click();
    await p.locator('.proof.ok').waitFor();
    const text = await p.locator('.proof').innerText();
    assert.match(text, /Verified: this entry is in the log/);
    assert.match(text, /checkpoint signature: signed by console\.test\/log/);
    await p.screenshot({ path: join(SHOTS, 'verify.png') });

    // A server that answers with another proof: the browser finds it does not lead to the signed root.
    await p.route('**/v1/proofs/inclusion**', async (route) => {
      const res = await route.fetch();
      const body = (await res.json()) as { proof: string[] };
      const first = Buffer.from(body.proof[0] as string, 'base64');
      first[0] = (first[0] as number) ^ 1;
      body.proof[0] = first.toString('base64');
      await route.fulfill({ response: res, json: body });
    });
    await p.getByRole('button', { name: 'Verify in this browser' }).click();
    await p.locator('.proof.bad').waitFor();
    assert.match(await p.locator('.proof').innerText(), /Not verified[\s\S]*inclusion proof: the proof leads to another root/);
    await p.unroute('**/v1/proofs/inclusion**');

    // A checkpoint whose signature does not match.
    await p.route('**/log/checkpoint', async (route) => {
      const res = await route.fetch();
      const note = (await res.text()).replace(/^(\d+)$/m, (n) => String(Number(n) + 1));
      await route.fulfill({ response: res, body: note });
    });
    await p.getByRole('button', { name: 'Verify in this browser' }).click();
    await p.locator('.proof.bad').waitFor();
    assert.match(await p.locator('.proof').innerText(), /checkpoint signature: no valid signature/);
    await p.context().close();
  });

  test('export downloads the current query as JSONL, as the user', async () => {
    const p = await signedIn(data.token);
    await search(p, 'action:git.commit');
    const [download] = await Promise.all([p.waitForEvent('download'), p.getByRole('button', { name: 'JSONL' }).click()]);
    const lines = readFileSync((await download.path()) as string, 'utf8')
      .trim()
      .split('\n');
    assert.equal(lines.length, commits);
    assert.ok(lines.every((l) => JSON.parse(l).event.action === 'git.commit'));
    await p.context().close();
  });

  test('the keyboard: / focuses the query, arrow keys move through results, the open entry is in the URL', async () => {
    const p = await signedIn(data.token);
    await search(p, 'action:k8s.*');
    await p.locator('body').click({ position: { x: 5, y: 700 } });
    await p.keyboard.press('/');
    assert.equal(await p.evaluate("document.activeElement?.getAttribute('aria-label')"), 'search query');
    await p.getByRole('grid').focus();
    await p.keyboard.press('ArrowDown');
    await p.keyboard.press('ArrowDown');
    const third = await p.locator('[role=row][data-index]').nth(2).getAttribute('data-index');
    await p.waitForFunction(`location.hash.includes('entry=${third}')`);
    await p.getByRole('complementary', { name: `entry ${third}` }).waitFor();
    await p.context().close();
  });

  test('an auditor limited to the general tier never sees the restricted one', async () => {
    const p = await signedIn(auditorKey);
    await search(p, 'action:hr.*');
    await p.locator('.empty').waitFor();
    await search(p, '');
    const tiers = await p.locator('[role=row][data-index] .c-tier').allInnerTexts();
    assert.ok(tiers.length > 0 && tiers.every((t) => t === 'general'), tiers.join(','));
    // The server's counts of every match leave the restricted tier out too.
    const overview = p.getByRole('region', { name: 'overview of the matches' });
    await overview.locator('.hint', { hasText: /^All / }).waitFor();
    const facets = await overview.locator('.facets').innerText();
    assert.match(facets, /general/);
    assert.doesNotMatch(facets, /restricted|hr\./);
    await p.getByRole('link', { name: 'Health' }).click();
    assert.match(await p.locator('main.health').innerText(), /tiers you may search\s+general/);
    await p.context().close();
  });

  test('the histogram and facets count every match; dragging narrows the query to a span; a facet value adds itself', async () => {
    const p = await signedIn(data.token);
    await search(p, '');
    const overview = p.getByRole('region', { name: 'overview of the matches' });
    // More entries than the first page: the server counted them all, not the rows loaded.
    const loaded = await p.locator('.status').innerText();
    const all = await overview.locator('.hint', { hasText: /^All / }).innerText();
    const total = Number.parseInt(all.slice(4).replaceAll(',', ''), 10);
    assert.ok(total >= 302 && total > Number.parseInt(loaded, 10), `${all} / ${loaded}`);
    assert.match(await overview.locator('.facets').innerText(), /restricted/);
    await search(p, 'action:git.commit');
    await overview.locator('.hint', { hasText: `All ${commits} matches` }).waitFor();
    const box = (await p.getByRole('img', { name: /matches over time/ }).boundingBox()) as {
      x: number;
      y: number;
      width: number;
      height: number;
    };
    await p.mouse.move(box.x + box.width * 0.25, box.y + box.height / 2);
    await p.mouse.down();
    await p.mouse.move(box.x + box.width * 0.75, box.y + box.height / 2, { steps: 5 });
    await p.mouse.up();
    await p.waitForFunction("decodeURIComponent(location.hash).includes('since:')");
    const q = new URLSearchParams(new URL(p.url()).hash.split('?')[1]).get('q') as string;
    assert.match(q, /^action:git\.commit since:\S+Z until:\S+Z$/);
    await p.locator(`.status[data-state=done][data-query="${q}"]`).waitFor();
    const narrowed = Number.parseInt(await p.locator('.status').innerText(), 10);
    assert.ok(narrowed > 0 && narrowed <= commits, `${narrowed} of ${commits}`);

    await search(p, 'action:git.commit');
    await p.getByRole('region', { name: 'overview of the matches' }).getByRole('button', { name: 'failure' }).click();
    await p.locator('.status[data-state=done][data-query="action:git.commit outcome:failure"]').waitFor();
    const outcomes = await p.locator('[role=row][data-index] .c-outcome').allInnerTexts();
    assert.ok(outcomes.length > 0 && outcomes.every((o) => o === 'failure'));
    await p.context().close();
  });

  test('completion: field names, then values seen in the results', async () => {
    const p = await signedIn(data.token);
    await search(p, 'action:git.commit');
    const box = p.getByLabel('search query');
    await box.fill('');
    await box.pressSequentially('outcome:failure act');
    const list = p.getByRole('listbox', { name: /completions/ });
    assert.deepEqual(await list.getByRole('option').allInnerTexts(), ['actor:', 'action:']);
    await box.press('Tab');
    await box.pressSequentially('ev');
    await list
      .getByRole('option', { name: 'actor:eve@example.com' })
      .waitFor({ timeout: 10_000 })
      .catch(async (err: Error) => {
        const state = `value ${JSON.stringify(await box.inputValue())}, options ${JSON.stringify(await p.getByRole('option').allInnerTexts())}`;
        throw new Error(`${err.message}: ${state}`);
      });
    assert.deepEqual(await list.getByRole('option').allInnerTexts(), ['actor:eve@example.com']);
    await box.press('Tab');
    assert.equal(await box.inputValue(), 'outcome:failure actor:eve@example.com');
    await p.context().close();
  });

  test("an entry shows its tier's retention and the legal holds that cover it", async () => {
    const hold = await requestJson(`${srv.url}/v1/holds`, 'POST', data.token, {
      reason: 'case dmitri-1',
      actor: 'dmitri@example.com',
    });
    assert.equal(hold.status, 201, hold.text);
    const p = await signedIn(data.token);
    await search(p, 'actor:dmitri@example.com');
    await p.locator('[role=row][data-index]').first().click();
    const detail = p.locator('aside.detail');
    await detail.getByText(/^case dmitri-1 \(by .*admin\)$/).waitFor();
    await detail.getByText('general (kept forever)').waitFor();
    await search(p, 'actor:eve@example.com');
    await p.locator('[role=row][data-index]').first().click();
    await detail.getByText('none covers it').waitFor();
    await requestJson(`${srv.url}/v1/holds/${hold.body.id}/release`, 'POST', data.token, { reason: 'done' });
    await p.context().close();
  });

  test("an actor's timeline shows what AI agents did on their behalf beside what they did", async () => {
    const p = await signedIn(data.token);
    await search(p, 'actor:agent:copilot');
    await p.locator('[role=row][data-index]').first().click();
    await p.getByRole('button', { name: /Everything by agent:copilot/ }).waitFor();
    await search(p, 'actor:alice@example.com');
    await p.locator('[role=row][data-index]').first().click();
    await p.getByRole('button', { name: /Everything by alice@example.com \(and AI agents on their behalf\)/ }).click();
    await p.locator('.status[data-state=done][data-query^="actor:alice@example.com OR"]').waitFor();
    const actors = await p.locator('[role=row][data-index] .c-actor').allInnerTexts();
    assert.ok(
      actors.some((a) => a.startsWith('agent:copilot') && a.includes('for alice@example.com')),
      actors.join(' | '),
    );
    assert.ok(actors.every((a) => a.startsWith('alice@example.com') || a.includes('for alice@example.com')));
    await p.context().close();
  });

  test('live mode shows new matches as they arrive, on top', async () => {
    const p = await signedIn(data.token);
    await search(p, 'action:deploy.live');
    await p.locator('.empty').waitFor();
    await p.getByRole('button', { name: 'follow live' }).click();
    await p.getByRole('button', { name: /live: following new matches/ }).waitFor();
    const [e] = await appendHttp(srv.url, data.token, [{ ...makeEvent(), action: 'deploy.live' }]);
    await p.locator(`[role=row][data-index="${e?.index}"]`).waitFor({ timeout: 30_000 });
    await p.context().close();
  });

  test('legal holds are placed and released with a reason; an erasure needs a subject, a reason and a confirmation, and leaves a gap', async () => {
    const p = await signedIn(data.token);
    await p.getByRole('link', { name: 'Holds' }).click();
    const place = p.getByRole('form', { name: 'place a hold' });
    assert.equal(await place.getByRole('button', { name: 'Place hold' }).isDisabled(), true, 'no reason, no hold');
    await place.getByLabel('Reason (recorded)').fill('case 2026-114');
    await place.getByLabel('Actor').fill('bob@example.com');
    await place.getByRole('button', { name: 'Place hold' }).click();
    await p.getByRole('cell', { name: 'case 2026-114' }).waitFor();
    const row = p.getByRole('row', { name: /case 2026-114/ });
    await row.getByLabel(/why release hold/).fill('case closed');
    await row.getByRole('button', { name: 'Release' }).click();
    await p.getByRole('cell', { name: /released .* case closed/ }).waitFor();

    const erase = p.getByRole('form', { name: 'erase a subject' });
    await erase.getByLabel('Subject').fill('user:zoe@example.com');
    await erase.getByLabel('Reason (recorded)').fill('GDPR request 77');
    assert.equal(await erase.getByRole('button', { name: 'Erase' }).isDisabled(), true, 'not without the confirmation');
    await erase.getByLabel('I understand this cannot be undone').check();
    await erase.getByRole('button', { name: 'Erase' }).click();
    assert.match(await erase.getByRole('status').innerText(), /^Erased: 1 events/);
    await p.goto(`${srv.url}/#/search?q=index:${subjectEntry}&entry=${subjectEntry}`);
    await p
      .locator('aside.detail')
      .getByText(/erased: its key was destroyed/)
      .waitFor();
    await p.context().close();
  });

  test('API keys are made (shown once) and revoked with a reason; an auditor sees none of the admin views', async () => {
    const p = await signedIn(data.token);
    await p.getByRole('link', { name: 'Keys' }).click();
    await p.getByLabel('Name').fill('console-made');
    await p.getByLabel('Roles (comma-separated)').fill('auditor');
    await p.getByRole('button', { name: 'Make key' }).click();
    const key = await p.locator('code.secret').innerText();
    assert.match(key, /^stele_/);
    assert.equal((await requestJson(`${srv.url}/v1/whoami`, 'GET', key)).status, 200, 'the key works');
    await p
      .getByRole('row', { name: /console-made/ })
      .getByRole('button', { name: 'revoke…' })
      .click();
    await p.getByLabel('why revoke console-made').fill('test done');
    await p.getByRole('button', { name: 'Revoke', exact: true }).click();
    await p.getByRole('row', { name: /console-made.*revoked/ }).waitFor();
    assert.equal((await requestJson(`${srv.url}/v1/whoami`, 'GET', key)).status, 401, 'revoked');
    await p.getByRole('link', { name: 'Policy' }).click();
    await p.getByRole('table', { name: 'Roles' }).getByRole('cell', { name: 'auditor', exact: true }).waitFor();
    await p.context().close();

    const a = await signedIn(auditorKey);
    assert.deepEqual(await a.getByRole('navigation', { name: 'views' }).getByRole('link').allInnerTexts(), ['Search', 'Health']);
    await a.context().close();
  });

  test('axe-core finds no serious or critical accessibility violations on the main screens', async () => {
    const p = await signedIn(data.token, undefined, { bypassCSP: true });
    const check = async (screen: string) => {
      await p.addScriptTag({ path: AXE });
      const result = (await p.evaluate('axe.run()')) as { violations: { id: string; impact: string; nodes: unknown[] }[] };
      const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      assert.deepEqual(
        bad.map((v) => `${v.id} (${v.nodes.length})`),
        [],
        `${screen}: ${JSON.stringify(bad, null, 1).slice(0, 2000)}`,
      );
    };
    await search(p, 'action:git.commit');
    await p.locator('[role=row][data-index]').first().click();
    await p.getByRole('button', { name: 'Verify in this browser' }).click();
    await p.locator('.proof.ok').waitFor();
    await check('search with an entry open');
    await p.getByRole('link', { name: 'Health' }).click();
    await p.locator('main.health').waitFor();
    await check('health');
    await p.screenshot({ path: join(SHOTS, 'health.png') });
    await p.getByRole('button', { name: 'Sign out' }).click();
    await p.getByLabel('API key').waitFor();
    await check('sign-in');
    await p.context().close();
  });

  test('works on a phone-sized screen: nothing scrolls sideways, the entry opens under the results', async () => {
    const p = await signedIn(data.token, { width: 390, height: 844 });
    await search(p, 'action:git.commit');
    await p.locator('[role=row][data-index]').first().click();
    await p.getByRole('button', { name: 'Verify in this browser' }).click();
    await p.locator('.proof.ok').waitFor();
    const overflow = (await p.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
    assert.ok(overflow <= 0, `${overflow} px wider than the screen`);
    await p.screenshot({ path: join(SHOTS, 'phone.png') });
    await p.context().close();
  });
});

describe('the console signs in with an OpenID provider (authorization code and PKCE in the browser)', {
  skip: problem ?? false,
  timeout: 180_000,
}, () => {
  let data: DataDir;
  let srv: SteleServer;
  let idp: Idp;
  let browser: Browser;

  before(async () => {
    const port = await freePort();
    idp = await startIdp({
      users: [{ email: 'alice@example.com', groups: ['sre'] }],
      consoleClient: { redirectUri: `http://127.0.0.1:${port}/` },
    });
    data = await initDir('console-oidc.test/log');
    writeFileSync(
      join(data.dir, 'stele.policy.yaml'),
      `version: 1
retention:
  default: general
  tiers:
    - name: general
      keep: forever
identity:
  issuers:
    - issuer: ${idp.issuer}
      audience: stele
      console:
        client_id: ${CONSOLE_CLIENT}
        label: Acme SSO
        scopes: [openid, email, groups, 'events:read']
        params: { resource: 'urn:stele' }
roles:
  admin: { actions: [append, read, search, export, erase, hold, admin, metrics], vouch: ['*'] }
  sre: { members: ['group:sre'], actions: [read, search] }
`,
    );
    srv = await SteleServer.start(data.dir, { checkpointIntervalMs: 50, args: ['--listen', `127.0.0.1:${port}`] });
    await appendHttp(srv.url, data.token, [{ ...makeEvent(), action: 'git.commit' }]);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await srv?.kill();
    await idp?.close();
    await cleanup();
  });

  test("a user signs in at the IdP, comes back signed in as themselves, and no token is kept in the browser's storage", async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${srv.url}/#/search?q=action:git.commit`);
    await page.getByRole('button', { name: 'Sign in with Acme SSO' }).click();
    await page.getByLabel('Email').fill('alice@example.com');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.getByLabel('search query').waitFor();
    assert.equal(await page.locator('header .who').innerText(), 'alice@example.com');
    assert.equal(new URL(page.url()).search, '', 'the code is gone from the address');
    assert.match(page.url(), /#\/search\?q=action/, 'back where the user was');
    await page.locator('[role=row][data-index]').first().waitFor();
    const stored = (await page.evaluate(
      'JSON.stringify({ local: Object.entries(localStorage), session: Object.entries(sessionStorage) })',
    )) as string;
    assert.doesNotMatch(stored, /eyJ/, 'no JWT in localStorage or sessionStorage');
    assert.deepEqual(JSON.parse(stored).session, [], 'the PKCE verifier is gone');
    // The search was the user's own: the log recorded it under their name.
    const audit = await getJson<{ hits: { event: { actor: { id: string } } }[] }>(
      `${srv.url}/v1/events?q=${encodeURIComponent('action:stele.access.search actor:alice@example.com')}`,
      30_000,
      data.token,
    );
    assert.ok(audit.hits.length >= 1);
    await page.context().close();
  });

  test('a return from the IdP that this tab did not start is refused', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${srv.url}/?code=forged&state=forged`);
    await page.getByRole('alert').filter({ hasText: 'state mismatch' }).waitFor();
    assert.equal(await page.getByLabel('search query').count(), 0);
    await page.context().close();
  });
});
