/**
 * The deployment files (deploy/, Dockerfile) checked as far as this machine can: the systemd unit
 * by systemd-analyze; the Kubernetes manifest parsed, its flags and variables held to the settings
 * table, and its configuration layout run for real (nodes started the way its init container lays
 * the Secret out, on a real PostgreSQL); the Dockerfile's sources and command; the Terraform by
 * `terraform fmt` and `terraform validate` (with a local provider mirror: Terraform and its AWS
 * provider come from neither Debian nor npm, so that part is skipped, saying why, where they are
 * absent). No Docker engine runs here, so the image itself is not built.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { SERVE_SETTINGS, SETTINGS } from '../src/core/config/settings.js';
import { Postgres, pgProblem } from './helpers/postgres.js';
import { CLI, cleanup, getJson, initDir, SteleServer, tempDir } from './helpers/stele.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML, walked by the paths Kubernetes defines
type Yaml = any;

/** Every flag of `stele serve`, and every variable a setting reads. */
const FLAGS = new Set<string>(SERVE_SETTINGS.map((n) => (SETTINGS[n] as { flag: string }).flag));
const VARIABLES = new Set<string>(
  Object.values(SETTINGS)
    .map((s) => (s as { env?: string }).env)
    .filter((e): e is string => e !== undefined),
);

/** The flags in a `stele serve` argument list that are not flags of stele serve. */
const unknownFlags = (args: readonly string[]) => args.filter((a) => a.startsWith('--') && !FLAGS.has(a));

after(() => cleanup());

test('systemd-analyze verify finds nothing to say about deploy/systemd/stele.service', (t) => {
  const analyze = spawnSync('systemd-analyze', ['--version']);
  if (analyze.error) {
    if (process.env.CI === 'true') assert.fail('CI must run it: systemd-analyze is missing (apt-get install systemd)');
    t.skip('systemd-analyze is missing (apt-get install systemd)');
    return;
  }
  const unit = read('deploy/systemd/stele.service');
  const exec = /^ExecStart=(\S+) (\S+) (.*)$/m.exec(unit);
  assert.ok(exec, 'ExecStart runs node on the CLI');
  assert.equal(exec[2], '/opt/stele/dist/src/cli/main.js');
  const args = (exec[3] as string).split(' ');
  assert.equal(args[0], 'serve');
  assert.deepEqual(unknownFlags(args), []);
  // The unit as installed on this machine: node and the CLI where they are here.
  const dir = tempDir('unit-');
  const file = join(dir, 'stele.service');
  writeFileSync(file, unit.replace(`${exec[1]} ${exec[2]}`, `${process.execPath} ${CLI}`));
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.trim(), '', 'no unknown keys or other warnings');
});

describe('deploy/kubernetes/stele-postgres.yaml', () => {
  const docs = parseAllDocuments(read('deploy/kubernetes/stele-postgres.yaml')).map((d) => d.toJS() as Yaml);
  const deployment = docs.find((d) => d.kind === 'Deployment') as Yaml;
  const pod = deployment.spec.template.spec;
  const stele = pod.containers.find((c: { name: string }) => c.name === 'stele');
  const items: { key: string; path: string }[] = pod.volumes.find((v: { name: string }) => v.name === 'secret').secret.items;

  test('parses as Kubernetes objects, and runs stele serve with real flags and variables', () => {
    for (const d of docs) {
      assert.ok(typeof d.apiVersion === 'string' && typeof d.kind === 'string', 'every document is an object');
      assert.ok(d.metadata?.name, `${d.kind} has a name`);
    }
    assert.deepEqual(
      docs.map((d) => d.kind),
      ['Namespace', 'ServiceAccount', 'Deployment', 'Service', 'PodDisruptionBudget'],
    );
    assert.ok(deployment.spec.replicas >= 3, 'several nodes');
    assert.deepEqual(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels);
    assert.equal(stele.args[0], 'serve');
    assert.deepEqual(unknownFlags(stele.args), []);
    for (const e of stele.env as { name: string }[])
      assert.ok(VARIABLES.has(e.name), `${e.name} is a variable Stele reads (or the AWS SDK's)`);
    assert.ok(
      stele.env.some((e: { name: string }) => e.name === 'STELE_POSTGRES_URL'),
      'the database from a Secret',
    );
    const port = Number((stele.args[stele.args.indexOf('--listen') + 1] as string).split(':')[1]);
    assert.equal(stele.ports[0].containerPort, port);
    for (const probe of [stele.readinessProbe, stele.livenessProbe]) assert.equal(probe.httpGet.path, '/healthz');
    const service = docs.find((d) => d.kind === 'Service') as Yaml;
    assert.deepEqual(service.spec.selector, deployment.spec.template.metadata.labels);
  });

  const problem = pgProblem();
  if (problem !== null && process.env.CI === 'true')
    test('the configuration layout', () => assert.fail(`CI must run it: ${problem}`));
  test('the Secret laid out as its init container does is a configuration two nodes serve one log from', {
    skip: problem ?? false,
    timeout: 120_000,
  }, async () => {
    // The files of `stele init` under the Secret's keys, as `kubectl create secret … --from-file` makes it.
    const conf = await initDir('k8s.test/log');
    const byKey: Record<string, string> = {
      'stele.json': 'stele.json',
      'stele.policy.yaml': 'stele.policy.yaml',
      'log.key': 'keys/log.key',
      'log.vkey': 'keys/log.vkey',
      'master.key': 'keys/master.key',
      'apikeys.json': 'auth/apikeys.json',
    };
    assert.deepEqual(
      items.map((i) => i.key),
      Object.keys(byKey),
    );
    const pg = await Postgres.start();
    const nodes: SteleServer[] = [];
    try {
      const url = pg.createDb('k8s');
      // The manifest's flags but those the test sets itself (--dir, --listen) and --tiles (no bucket here).
      const args: string[] = stele.args.slice(1);
      const extra: string[] = [];
      for (let i = 0; i < args.length; i += 2)
        if (!['--dir', '--listen', '--tiles'].includes(args[i] as string)) extra.push(args[i] as string, args[i + 1] as string);
      for (let node = 0; node < 2; node++) {
        // The init container: each item at its path, copied to the node's own volume.
        const secret = tempDir('secret-');
        for (const i of items) {
          mkdirSync(dirname(join(secret, i.path)), { recursive: true });
          cpSync(join(conf.dir, byKey[i.key] as string), join(secret, i.path));
        }
        const volume = join(tempDir('volume-'), 'config');
        execFileSync('sh', ['-c', pod.initContainers[0].command[2].replaceAll('/secret', secret).replaceAll('/config', volume)]);
        nodes.push(await SteleServer.start(volume, { args: extra, env: { STELE_POSTGRES_URL: url }, readyTimeoutMs: 60_000 }));
      }
      // The admin key of `stele init` works on both (copied into the database by the first).
      for (const node of nodes) {
        const keys = await getJson<{ keys: unknown[] }>(`${node.url}/v1/keys`, 30_000, conf.token);
        assert.ok(keys.keys.length >= 1);
      }
      const health = await Promise.all(nodes.map((n) => getJson<{ integrator?: boolean }>(`${n.url}/healthz`)));
      assert.ok(health.every((h) => typeof h.integrator === 'boolean'));
    } finally {
      for (const n of nodes) await n.kill();
      await pg.stop();
    }
  });
});

test('the Dockerfile copies what exists and runs the CLI the package names', () => {
  const file = read('Dockerfile');
  const pkg = JSON.parse(read('package.json')) as { bin: { stele: string } };
  for (const m of file.matchAll(/^COPY (?!--from)(.+)$/gm)) {
    const parts = (m[1] as string).split(/\s+/);
    for (const src of parts.slice(0, -1)) assert.ok(existsSync(join(ROOT, src)), `COPY ${src}: it exists`);
  }
  const entry = JSON.parse(/^ENTRYPOINT (.+)$/m.exec(file)?.[1] as string) as string[];
  assert.equal(entry[1], `/opt/stele/${pkg.bin.stele}`);
  const cmd = JSON.parse(/^CMD (.+)$/m.exec(file)?.[1] as string) as string[];
  assert.equal(cmd[0], 'serve');
  assert.deepEqual(unknownFlags(cmd), []);
  // What the code reads beside itself at run time is in the image.
  for (const asset of ['src/event/dictionaries', 'clients/git'])
    assert.match(file, new RegExp(`^COPY ${asset} `, 'm'), `${asset} is copied`);
});

test('terraform fmt and validate pass on deploy/terraform/aws', (t) => {
  const plugins = process.env.TF_PLUGIN_DIR ?? '/opt/tf-plugins';
  if (spawnSync('terraform', ['version']).error || !existsSync(plugins)) {
    // Neither Debian nor npm has Terraform or its AWS provider: not something CI can install here.
    t.skip(`terraform or its provider mirror (${plugins}) is not on this machine`);
    return;
  }
  const dir = tempDir('tf-');
  cpSync(join(ROOT, 'deploy/terraform/aws'), dir, { recursive: true });
  const env = { ...process.env, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1' };
  const run = (args: string[]) => spawnSync('terraform', args, { cwd: dir, env, encoding: 'utf8', timeout: 120_000 });
  const fmt = run(['fmt', '-check', '-diff']);
  assert.equal(fmt.status, 0, fmt.stdout + fmt.stderr);
  const init = run(['init', '-backend=false', '-input=false', `-plugin-dir=${plugins}`]);
  assert.equal(init.status, 0, init.stdout + init.stderr);
  const validate = run(['validate', '-no-color']);
  assert.equal(validate.status, 0, validate.stdout + validate.stderr);
  assert.match(validate.stdout, /The configuration is valid/);
});
