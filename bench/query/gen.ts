/**
 * A deterministic stream of realistic audit events for the query benchmark: 90 days of a company's
 * activity (people in Emacs, git, the AWS console and Kubernetes; controllers, CI and deploy
 * services; AI agents acting for people), in log order, each turned into the query store's row and
 * text by the real `indexRow` and `ftsText`.
 *
 * - Actors: 500 humans, 50 services and 20 AI agents, each population Zipf-distributed (s = 1), so
 *   a few actors produce most events and the tail produces a few hundred each over 90 days.
 * - Actions: 69 across emacs.*, git.*, k8s.*, aws.*, ci.*, stele.*, weighted per kind of actor
 *   (and per role for humans), each with its own failure and denial rates (about 96 % success).
 * - Time: a weekday/daytime curve over the 90 days; `received` grows with the index, the event's
 *   `time` lags it by under a second mostly and up to minutes (offline clients).
 * - Text: file paths, package names, commit messages, error reasons, namespaces, buckets, built
 *   from word lists with Zipf frequencies; project codenames (20,000, uniform) are the rare words.
 *
 * Changing anything here changes the store: bump GEN_VERSION so cached stores are rebuilt.
 */
import { formatMicros } from '../../src/event/record.js';
import { ftsText, type IndexRow, indexRow } from '../../src/event/searchable.js';
import type { Event, Ingest, LeafRecord } from '../../src/event/types.js';
import { rng } from '../../test/helpers/prng.js';

export const GEN_VERSION = 1;
export const SEED = 0x5e1e_0001;
export const DAYS = 90;
const DAY_MS = 86_400_000;
/** The stream ends here (fixed, so a cached store does not depend on the day it was built). */
export const END_MS = Date.UTC(2026, 10, 20); // 2026-11-20T00:00:00Z
export const START_MS = END_MS - DAYS * DAY_MS;

type R = () => number;

// ---- word lists --------------------------------------------------------------------------------

const FIRST = (
  'alice bob carol dmitri eve frank grace heidi ivan judy ken laura mallory nina oscar peggy quinn rupert sybil trent ' +
  'uma victor wendy xavier yara zoe ahmed beatriz chen daniela emeka fatima goran hana ines jonas keiko lars mei ' +
  'nadia olu priya rafael sanjay tomas ulla vikram wei yusuf zainab'
).split(' ');

const SERVICES = [
  'system:serviceaccount:argocd:argocd-application-controller',
  'system:serviceaccount:kube-system:kube-controller-manager',
  'system:kube-scheduler',
  'system:serviceaccount:kube-system:cluster-autoscaler',
  'system:serviceaccount:cert-manager:cert-manager',
  'system:serviceaccount:flux-system:kustomize-controller',
  'system:serviceaccount:monitoring:prometheus-operator',
  'system:serviceaccount:ingress-nginx:ingress-nginx',
  'system:serviceaccount:external-secrets:external-secrets',
  'system:serviceaccount:velero:velero',
  'github-actions',
  'buildkite-agent',
  'jenkins',
  'renovate-bot',
  'dependabot',
  'terraform-cloud',
  'atlantis',
  'arn:aws:iam::123456789012:role/deploy-pipeline',
  'arn:aws:iam::123456789012:role/backup-job',
  'arn:aws:iam::123456789012:role/log-shipper',
  'arn:aws:iam::123456789012:role/etl-nightly',
  'arn:aws:iam::123456789012:role/cost-reporter',
  'git-mirror',
  'gerrit-replication',
  'release-tagger',
  'stele-retention',
  'stele-exporter',
  'siem-forwarder',
  'vault-agent',
  'spinnaker',
];
// 50 services: the named ones, then numbered workers of the same kinds.
while (SERVICES.length < 50) SERVICES.push(`svc-worker-${String(SERVICES.length).padStart(2, '0')}`);

const AGENT_NAMES = ['claude-code', 'copilot-agent', 'release-bot', 'triage-bot', 'refactor-agent'];

const VERBS = (
  'Fix Add Remove Refactor Update Bump Revert Improve Handle Document Simplify Rename Move Support Use Avoid Cache ' +
  'Retry Log Test Drop Clean Speed Guard Validate Split Merge Extract Inline Deprecate Migrate Pin Tune Enable Disable'
).split(' ');

/** Domain vocabulary, most frequent first (drawn with Zipf weights). */
const WORDS = (
  'the config test error handler service api client request response cache user token session timeout retry ' +
  'payments ledger invoice billing account login auth deploy build pipeline docker image helm chart values ' +
  'migration schema database query index table column connection pool worker queue job scheduler cron metrics ' +
  'logging tracing dashboard alert monitor health check probe readiness liveness memory cpu limit quota rate ' +
  'limiter backoff circuit breaker flaky race condition deadlock lock mutex thread async await promise stream ' +
  'buffer parser lexer tokenizer serializer json yaml toml protobuf grpc http websocket tls certificate rotation ' +
  'secret vault kms encryption signature checksum hash merkle tile checkpoint proof audit log event search export ' +
  'retention policy tier hold erase subject consent gdpr privacy permission role binding namespace pod container ' +
  'node cluster ingress egress network dns proxy gateway load balancer autoscaler replica shard partition backup ' +
  'restore snapshot archive upload download bucket object storage volume disk filesystem path file directory ' +
  'terraform module provider state plan apply drift lint format typecheck compile bundle webpack vite react ' +
  'component hook style layout theme button form modal table pagination sorting filter validation error boundary ' +
  'locale translation currency refund dispute chargeback settlement reconciliation webhook notification email sms ' +
  'push template renderer pdf report csv spreadsheet import upload parser regression benchmark profile ' +
  'allocation leak gc latency throughput p99 slow fast startup shutdown signal graceful restart crash panic ' +
  'segfault overflow underflow nil null undefined boundary edge case typo comment readme changelog docs license ' +
  'dependency upgrade vulnerability cve patch security hardening sandbox seccomp capability rootless ' +
  'emacs magit org elisp keybinding mode hook advice package melpa straight use-package lsp eglot tramp dired ' +
  'flycheck company corfu vertico consult embark which-key projectile treesit python rust go typescript ' +
  'kotlin swift java ruby elixir haskell ocaml clojure scala sql bash zsh nix'
).split(' ');

const PACKAGES = (
  'magit org transient with-editor compat dash s f ht projectile company corfu vertico orderless marginalia ' +
  'consult embark which-key flycheck lsp-mode eglot yasnippet markdown-mode yaml-mode json-mode web-mode ' +
  'rust-mode go-mode typescript-mode python-mode terraform-mode dockerfile-mode kubernetes docker ' +
  'restclient treemacs doom-modeline all-the-icons nerd-icons evil general hydra avy ace-window multiple-cursors ' +
  'expand-region undo-tree vterm eat eshell-git-prompt diff-hl git-gutter forge code-review gptel ellama copilot ' +
  'chatgpt-shell org-roam org-journal denote deft elfeed mu4e notmuch pdf-tools nov auctex cider sly geiser ' +
  'haskell-mode tuareg merlin elixir-mode alchemist lua-mode nix-mode direnv envrc exec-path-from-shell ' +
  'editorconfig format-all apheleia prettier-js blacken ruff-format rainbow-delimiters smartparens paredit ' +
  'lispy helpful elisp-demos keycast command-log-mode esup benchmark-init gcmh no-littering'
).split(' ');

const REPOS = (
  'payments-service web-console infra-terraform ledger mobile-app stele platform-charts data-pipeline auth-gateway ' +
  'search-api billing-worker notification-hub design-system docs-site internal-tools ml-features fraud-detector ' +
  'checkout-frontend k8s-manifests dotfiles emacs-config'
).split(' ');

const NAMESPACES = (
  'payments ledger checkout auth search billing notifications data ml platform monitoring ingress-nginx ' +
  'cert-manager argocd kube-system default staging sandbox'
).split(' ');

const CLUSTERS = ['prod-eu-1', 'prod-us-1', 'prod-ap-1', 'staging-eu-1', 'dev-shared'];
const REGIONS = ['eu-west-1', 'us-east-1', 'ap-southeast-1', 'eu-central-1'];
const EXTS = ['ts', 'go', 'py', 'rs', 'el', 'yaml', 'md', 'sql', 'tf', 'json', 'tsx', 'org'];
const MODES = [
  'typescript-ts-mode',
  'go-ts-mode',
  'python-ts-mode',
  'rust-ts-mode',
  'emacs-lisp-mode',
  'yaml-ts-mode',
  'markdown-mode',
  'sql-mode',
  'terraform-mode',
  'js-json-mode',
  'tsx-ts-mode',
  'org-mode',
];
const MODELS = ['claude-sonnet-4', 'gpt-4o', 'claude-opus-4', 'llama-3-70b', 'gemini-2-pro'];

const FAILURE_REASONS = [
  'connection refused',
  'timeout waiting for response',
  'context deadline exceeded',
  'out of memory',
  'deadlock detected',
  'merge conflict in {file}',
  'non-fast-forward update rejected',
  'test {word} failed',
  'exit status 1',
  'image pull backoff',
  'crash loop backoff',
  'no space left on device',
  'certificate has expired',
  'rate limit exceeded',
  'flaky test {word} timed out',
];
const DENIAL_REASONS = [
  'permission denied',
  'forbidden: user cannot {verb} resource',
  'access denied by policy {word}',
  'package not on the allow-list',
  'protected branch: review required',
  'approval required for production',
  'MFA required',
  'admission webhook denied the request',
  'explicit deny in service control policy',
];

/** Pronounceable project codenames: the rare words of full-text search (uniform over 20,000). */
const SYL = [
  'ka',
  'lo',
  'mi',
  'ran',
  'tel',
  'vo',
  'zu',
  'qua',
  'bri',
  'sen',
  'dor',
  'fy',
  'gal',
  'hex',
  'jo',
  'nim',
  'pra',
  'sul',
  'tor',
  'wyn',
];
export const CODENAMES = 20_000;
export function codename(i: number): string {
  // Three syllables from 20 each (8,000) plus an ending from 3: 24,000 distinct names.
  const a = i % 20;
  const b = Math.floor(i / 20) % 20;
  const c = Math.floor(i / 400) % 20;
  const d = Math.floor(i / 8000) % 3;
  return `${SYL[a]}${SYL[b]}${SYL[c]}${['', 'ix', 'or'][d]}`;
}

// ---- sampling ----------------------------------------------------------------------------------

/** Cumulative Zipf weights (s) over n ranks. */
function zipfCdf(n: number, s: number): Float64Array {
  const c = new Float64Array(n);
  let t = 0;
  for (let i = 0; i < n; i++) {
    t += 1 / (i + 1) ** s;
    c[i] = t;
  }
  for (let i = 0; i < n; i++) (c as Float64Array)[i] = (c[i] as number) / t;
  return c;
}

function cdfOf(weights: readonly number[]): Float64Array {
  const c = new Float64Array(weights.length);
  let t = 0;
  for (let i = 0; i < weights.length; i++) {
    t += weights[i] as number;
    c[i] = t;
  }
  for (let i = 0; i < c.length; i++) c[i] = (c[i] as number) / t;
  return c;
}

/** Index drawn from a cumulative distribution (binary search). */
function draw(cdf: Float64Array, u: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((cdf[mid] as number) < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const pick = <T>(r: R, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
const HEX = '0123456789abcdef';
function hex(r: R, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += HEX[Math.floor(r() * 16)];
  return s;
}
function uuid4(r: R): string {
  const h = hex(r, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${'89ab'[Math.floor(r() * 4)]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const WORD_CDF = zipfCdf(WORDS.length, 1.05);
const PACKAGE_CDF = zipfCdf(PACKAGES.length, 1.1);
const REPO_CDF = zipfCdf(REPOS.length, 0.9);
const word = (r: R) => WORDS[draw(WORD_CDF, r())] as string;

// ---- actors ------------------------------------------------------------------------------------

type Family = 'emacs' | 'git' | 'k8s' | 'aws' | 'ci' | 'stele';

interface Actor {
  id: string;
  type: 'human' | 'service' | 'ai_agent';
  /** Cumulative distribution over ACTIONS for this actor. */
  actions: Float64Array;
  host: string;
  onBehalfOf?: number; // human index (agents)
}

export const HUMANS = 500;
export const SERVICE_COUNT = 50;
export const AGENTS = 20;

export const humanId = (i: number) => `${FIRST[i % FIRST.length]}-${String(i).padStart(3, '0')}`;

// ---- actions -----------------------------------------------------------------------------------

interface Ctx {
  r: R;
  actor: Actor;
  human: string; // the human behind it (self, or on_behalf_of)
  repo: string;
}

interface ActionSpec {
  name: string;
  family: Family;
  source: string;
  /** Relative frequency within its family. */
  w: number;
  fail: number;
  deny: number;
  make(c: Ctx): { resource?: { type: string; id: string }; data?: Record<string, unknown>; host?: string };
}

function filePath(r: R, repo: string): string {
  const depth = 1 + Math.floor(r() * 3);
  const parts = ['src'];
  for (let i = 0; i < depth; i++) parts.push(word(r));
  const ext = pick(r, EXTS);
  return `${repo}/${parts.join('/')}/${word(r)}_${word(r)}.${ext}`;
}

function commitMessage(r: R): string {
  let m = `${pick(r, VERBS)} ${word(r)} ${word(r)}`;
  const x = r();
  if (x < 0.35) m += ` in ${word(r)} ${word(r)}`;
  else if (x < 0.5) m += ` for ${codename(Math.floor(r() * CODENAMES))}`;
  else if (x < 0.6) m += ' after merge conflict';
  else if (x < 0.68) m += ` (pull request #${1000 + Math.floor(r() * 9000)})`;
  if (r() < 0.25)
    m += `\n\nThe ${word(r)} ${word(r)} ${pick(r, ['was', 'is', 'could be'])} ${word(r)} when ${word(r)} ${word(r)}.`;
  return m;
}

const k8s = (name: string, w: number, fail: number, deny: number, kind: string): ActionSpec => ({
  name,
  family: 'k8s',
  source: 'kubernetes',
  w,
  fail,
  deny,
  make: ({ r }) => {
    const ns = r() < 0.1 ? codename(Math.floor(r() * CODENAMES)) : pick(r, NAMESPACES);
    const obj = `${pick(r, [word(r), pick(r, REPOS)])}-${hex(r, 5)}`;
    return {
      host: pick(r, CLUSTERS),
      resource: { type: kind, id: `${ns}/${obj}` },
      data: {
        namespace: ns,
        verb: name.split('.').at(-1),
        user_agent: pick(r, ['kubectl/v1.31.2', 'argocd/v2.13', 'helm/v3.16', 'k9s/0.32']),
        resource_version: String(Math.floor(r() * 1e8)),
      },
    };
  },
});

const aws = (name: string, w: number, fail: number, deny: number, kind: string): ActionSpec => ({
  name,
  family: 'aws',
  source: 'cloudtrail',
  w,
  fail,
  deny,
  make: ({ r }) => {
    const region = pick(r, REGIONS);
    const svc = name.split('.')[1] as string;
    const id =
      kind === 'object'
        ? `s3://${pick(r, ['acme', 'data', 'logs', 'backup'])}-${word(r)}-${region}/${word(r)}/${hex(r, 8)}.${pick(r, ['parquet', 'json', 'gz', 'csv'])}`
        : kind === 'role'
          ? `arn:aws:iam::123456789012:role/${word(r)}-${word(r)}`
          : kind === 'instance'
            ? `i-0${hex(r, 16)}`
            : `arn:aws:${svc}:${region}:123456789012:${kind}/${word(r)}-${hex(r, 6)}`;
    return {
      host: `${svc}.amazonaws.com`,
      resource: { type: kind, id },
      data: {
        region,
        request_id: uuid4(r),
        source_ip: `10.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}`,
        user_agent: pick(r, ['aws-cli/2.17', 'console.amazonaws.com', 'Boto3/1.35', 'terraform/1.9']),
      },
    };
  },
});

const emacs = (name: string, w: number, fail: number, deny: number, make: ActionSpec['make']): ActionSpec => ({
  name,
  family: 'emacs',
  source: 'emacs',
  w,
  fail,
  deny,
  make,
});

const git = (name: string, w: number, fail: number, deny: number, extra: (c: Ctx) => Record<string, unknown>): ActionSpec => ({
  name,
  family: 'git',
  source: 'git',
  w,
  fail,
  deny,
  make: (c) => ({
    resource: { type: 'repo', id: `acme/${c.repo}` },
    data: { branch: pick(c.r, ['main', 'main', 'main', `feature/${word(c.r)}-${word(c.r)}`, `fix/${word(c.r)}`]), ...extra(c) },
  }),
});

const ci = (name: string, w: number, fail: number, deny: number): ActionSpec => ({
  name,
  family: 'ci',
  source: 'ci',
  w,
  fail,
  deny,
  make: ({ r, repo }) => ({
    host: `runner-${hex(r, 4)}`,
    resource: { type: 'pipeline', id: `acme/${repo}#${10000 + Math.floor(r() * 90000)}` },
    data: {
      job: `${pick(r, ['build', 'test', 'lint', 'deploy', 'e2e', 'release'])}-${word(r)}`,
      commit: hex(r, 40),
      duration_s: Math.floor(r() * 900),
    },
  }),
});

const stele = (name: string, w: number, deny: number, make: (c: Ctx) => Record<string, unknown>): ActionSpec => ({
  name,
  family: 'stele',
  source: 'stele',
  w,
  fail: 0.002,
  deny,
  make: (c) => ({ host: 'stele-prod', data: make(c) }),
});

export const ACTIONS: readonly ActionSpec[] = [
  emacs('emacs.package.install', 4, 0.02, 0.01, ({ r }) => {
    const p = PACKAGES[draw(PACKAGE_CDF, r())] as string;
    return {
      resource: { type: 'package', id: p },
      data: {
        archive: pick(r, ['melpa', 'gnu', 'nongnu', 'melpa-stable']),
        version: `${Math.floor(r() * 5)}.${Math.floor(r() * 20)}.${Math.floor(r() * 10)}`,
      },
    };
  }),
  emacs('emacs.package.upgrade', 2, 0.02, 0.005, ({ r }) => ({
    resource: { type: 'package', id: PACKAGES[draw(PACKAGE_CDF, r())] as string },
    data: { from: `20261${Math.floor(r() * 10)}0${Math.floor(1 + r() * 9)}.${Math.floor(r() * 2400)}`, archive: 'melpa' },
  })),
  emacs('emacs.package.delete', 0.5, 0.005, 0.002, ({ r }) => ({
    resource: { type: 'package', id: PACKAGES[draw(PACKAGE_CDF, r())] as string },
  })),
  emacs('emacs.package.refresh', 1, 0.03, 0, ({ r }) => ({
    data: { archives: ['gnu', 'nongnu', 'melpa'], packages: 5000 + Math.floor(r() * 1000) },
  })),
  emacs('emacs.file.open', 20, 0.002, 0.001, ({ r, repo }) => {
    const p = filePath(r, repo);
    return { resource: { type: 'file', id: p }, data: { project: repo, major_mode: pick(r, MODES) } };
  }),
  emacs('emacs.file.save', 25, 0.003, 0.001, ({ r, repo }) => {
    const p = filePath(r, repo);
    return {
      resource: { type: 'file', id: p },
      data: { project: repo, bytes: Math.floor(r() * 40000), lines_changed: Math.floor(r() * 60) },
    };
  }),
  emacs('emacs.file.revert', 2, 0.002, 0, ({ r, repo }) => ({ resource: { type: 'file', id: filePath(r, repo) } })),
  emacs('emacs.buffer.create', 6, 0, 0, ({ r }) => ({ resource: { type: 'buffer', id: `*${word(r)}*` } })),
  emacs('emacs.buffer.kill', 6, 0, 0, ({ r }) => ({ resource: { type: 'buffer', id: `*${word(r)}*` } })),
  emacs('emacs.eval', 3, 0.04, 0.01, ({ r }) => ({
    data: { form: `(setq ${word(r)}-${word(r)} ${pick(r, ['t', 'nil', String(Math.floor(r() * 100))])})` },
  })),
  emacs('emacs.config.change', 1.5, 0.01, 0.005, ({ r }) => ({
    data: {
      variable: pick(r, [
        'package-archives',
        'gc-cons-threshold',
        'auth-sources',
        'tramp-default-method',
        'gptel-model',
        'lsp-enable-file-watchers',
      ]),
      value: word(r),
    },
  })),
  emacs('emacs.tramp.connect', 1.5, 0.04, 0.01, ({ r }) => ({
    resource: { type: 'host', id: `${word(r)}-${hex(r, 3)}.${pick(r, CLUSTERS)}.internal` },
    data: { method: pick(r, ['ssh', 'sudo', 'kubernetes', 'docker']) },
  })),
  emacs('emacs.shell.command', 3, 0.05, 0.01, ({ r }) => ({
    data: { command: `${pick(r, ['make', 'npm run', 'cargo', 'go test', 'kubectl get', 'terraform plan'])} ${word(r)}`, exit: 0 },
  })),
  emacs('emacs.gptel.request', 4, 0.02, 0.01, ({ r, repo }) => ({
    data: {
      model: pick(r, MODELS),
      prompt_tokens: Math.floor(r() * 4000),
      buffer: filePath(r, repo),
      prompt: `${pick(r, ['explain', 'refactor', 'write tests for', 'document', 'fix'])} the ${word(r)} ${word(r)}`,
    },
  })),

  git('git.commit', 20, 0.005, 0.002, ({ r, repo }) => ({
    sha: hex(r, 40),
    message: commitMessage(r),
    files: [filePath(r, repo), filePath(r, repo)].slice(0, 1 + Math.floor(r() * 2)),
  })),
  git('git.push', 12, 0.02, 0.01, ({ r }) => ({
    ref: `refs/heads/${pick(r, ['main', `feature/${word(r)}`])}`,
    commits: 1 + Math.floor(r() * 6),
    forced: r() < 0.03,
  })),
  git('git.pull', 8, 0.02, 0, ({ r }) => ({ commits: Math.floor(r() * 30) })),
  git('git.fetch', 10, 0.01, 0, ({ r }) => ({ remote: 'origin', refs: Math.floor(r() * 10) })),
  git('git.clone', 1, 0.01, 0.005, ({ r }) => ({ depth: r() < 0.5 ? 1 : 0 })),
  git('git.checkout', 8, 0.005, 0, ({ r }) => ({ from: 'main', to: `feature/${word(r)}-${word(r)}` })),
  git('git.merge', 3, 0.04, 0.005, ({ r }) => ({
    from: `feature/${word(r)}`,
    message: `Merge pull request #${1000 + Math.floor(r() * 9000)} from acme/${word(r)}-${word(r)}`,
  })),
  git('git.rebase', 2, 0.05, 0, ({ r }) => ({ onto: 'main', commits: 1 + Math.floor(r() * 8) })),
  git('git.tag.create', 0.5, 0.005, 0.01, ({ r }) => ({
    tag: `v${Math.floor(r() * 5)}.${Math.floor(r() * 30)}.${Math.floor(r() * 10)}`,
  })),
  git('git.branch.delete', 1, 0.005, 0.02, ({ r }) => ({ deleted: `feature/${word(r)}` })),
  git('git.pr.open', 2, 0.005, 0.002, ({ r }) => ({
    title: commitMessage(r).split('\n')[0],
    number: 1000 + Math.floor(r() * 9000),
    reviewers: [humanId(Math.floor(r() * HUMANS))],
  })),
  git('git.pr.merge', 1.5, 0.01, 0.03, ({ r }) => ({
    number: 1000 + Math.floor(r() * 9000),
    method: pick(r, ['squash', 'merge', 'rebase']),
  })),

  k8s('k8s.pods.create', 8, 0.02, 0.005, 'pod'),
  k8s('k8s.pods.delete', 6, 0.005, 0.005, 'pod'),
  k8s('k8s.pods.exec', 1.5, 0.02, 0.06, 'pod'),
  k8s('k8s.pods.logs', 4, 0.01, 0.02, 'pod'),
  k8s('k8s.deployments.update', 5, 0.02, 0.005, 'deployment'),
  k8s('k8s.deployments.patch', 3, 0.02, 0.01, 'deployment'),
  k8s('k8s.deployments.scale', 1.5, 0.01, 0.01, 'deployment'),
  k8s('k8s.configmaps.update', 5, 0.01, 0.005, 'configmap'),
  k8s('k8s.secrets.get', 4, 0.005, 0.03, 'secret'),
  k8s('k8s.secrets.update', 1, 0.01, 0.03, 'secret'),
  k8s('k8s.leases.update', 25, 0.002, 0, 'lease'),
  k8s('k8s.jobs.create', 3, 0.03, 0.005, 'job'),
  k8s('k8s.namespaces.create', 0.2, 0.01, 0.05, 'namespace'),
  k8s('k8s.rolebindings.create', 0.3, 0.01, 0.06, 'rolebinding'),
  k8s('k8s.nodes.drain', 0.2, 0.05, 0.02, 'node'),

  aws('aws.sts.assume_role', 10, 0.02, 0.01, 'role'),
  aws('aws.s3.get_object', 15, 0.005, 0.01, 'object'),
  aws('aws.s3.put_object', 10, 0.005, 0.005, 'object'),
  aws('aws.s3.delete_object', 2, 0.005, 0.03, 'object'),
  aws('aws.ec2.run_instances', 1, 0.03, 0.02, 'instance'),
  aws('aws.ec2.terminate_instances', 1, 0.01, 0.03, 'instance'),
  aws('aws.iam.create_role', 0.3, 0.01, 0.04, 'role'),
  aws('aws.iam.attach_role_policy', 0.3, 0.01, 0.05, 'role'),
  aws('aws.iam.create_access_key', 0.2, 0.01, 0.08, 'role'),
  aws('aws.kms.decrypt', 6, 0.005, 0.01, 'key'),
  aws('aws.secretsmanager.get_secret_value', 3, 0.005, 0.02, 'secret'),
  aws('aws.console.login', 1, 0.04, 0.01, 'role'),
  aws('aws.rds.modify_db_instance', 0.3, 0.03, 0.02, 'db'),

  ci('ci.pipeline.start', 6, 0.01, 0.005),
  ci('ci.job.start', 12, 0.005, 0),
  ci('ci.job.finish', 12, 0.08, 0),
  ci('ci.test.run', 8, 0.05, 0),
  ci('ci.artifact.upload', 5, 0.01, 0.002),
  ci('ci.deploy', 3, 0.04, 0.02),
  ci('ci.job.retry', 1.5, 0.03, 0.005),
  ci('ci.secret.read', 3, 0.002, 0.01),

  stele('stele.search', 10, 0.01, ({ r }) => ({
    q: `actor:${humanId(Math.floor(r() * HUMANS))} since:7d`,
    hits: Math.floor(r() * 500),
  })),
  stele('stele.export', 3, 0.02, ({ r }) => ({ format: pick(r, ['jsonl', 'csv', 'bundle']), entries: Math.floor(r() * 100000) })),
  stele('stele.key.rotate', 0.3, 0.02, () => ({ reason: 'scheduled' })),
  stele('stele.policy.load', 0.5, 0.01, ({ r }) => ({ sha256: hex(r, 64) })),
  stele('stele.token.create', 0.5, 0.03, ({ r }) => ({
    name: `${word(r)}-${hex(r, 4)}`,
    role: pick(r, ['ingest', 'read', 'admin']),
  })),
  stele('stele.erase', 0.2, 0.05, ({ r }) => ({
    subject: `customer:${Math.floor(r() * 1e6)}`,
    ticket: `PRIV-${1000 + Math.floor(r() * 9000)}`,
  })),
  stele('stele.hold.create', 0.2, 0.03, ({ r }) => ({
    actors: [humanId(Math.floor(r() * HUMANS))],
    ticket: `LEGAL-${100 + Math.floor(r() * 900)}`,
  })),
];

/** Cumulative distribution over ACTIONS: families weighted by `mix`, actions within a family by `w`. */
function actionCdf(mix: Partial<Record<Family, number>>, only?: (a: ActionSpec) => boolean): Float64Array {
  const famTotal: Partial<Record<Family, number>> = {};
  for (const a of ACTIONS) if (!only || only(a)) famTotal[a.family] = (famTotal[a.family] ?? 0) + a.w;
  return cdfOf(ACTIONS.map((a) => (only && !only(a) ? 0 : ((mix[a.family] ?? 0) * a.w) / (famTotal[a.family] ?? 1))));
}

const ROLE_MIX: Partial<Record<Family, number>>[] = [
  { emacs: 45, git: 35, ci: 6, k8s: 6, aws: 6, stele: 2 }, // developer
  { k8s: 35, aws: 30, git: 14, emacs: 10, ci: 8, stele: 3 }, // operations
  { aws: 30, emacs: 25, git: 15, stele: 20, k8s: 10 }, // security / data
];

function makeActors(r: R): { humans: Actor[]; services: Actor[]; agents: Actor[] } {
  const roleCdfs = ROLE_MIX.map((m) => actionCdf(m));
  const humans = Array.from({ length: HUMANS }, (_, i): Actor => {
    const u = r();
    const role = u < 0.6 ? 0 : u < 0.85 ? 1 : 2;
    return { id: humanId(i), type: 'human', actions: roleCdfs[role] as Float64Array, host: `${humanId(i)}-laptop` };
  });
  // Each service does the work of one kind of system, on a few actions of its family.
  const serviceFamily = (id: string): Family =>
    id.startsWith('system:')
      ? 'k8s'
      : id.startsWith('arn:') || id === 'terraform-cloud' || id === 'atlantis'
        ? 'aws'
        : /git|gerrit|release|renovate|dependabot/.test(id)
          ? 'git'
          : id.startsWith('stele') || id === 'siem-forwarder'
            ? 'stele'
            : 'ci';
  const services = SERVICES.map((id, i): Actor => {
    const fam = i >= 30 ? (['k8s', 'ci', 'aws'] as const)[i % 3] : serviceFamily(id);
    const mine = ACTIONS.filter((a) => a.family === fam);
    // A service uses a handful of its family's actions (deterministic per service).
    const keep = new Set(mine.filter((_, k) => k === 0 || (k * 7 + i) % 3 !== 0).map((a) => a.name));
    return {
      id,
      type: 'service',
      actions: actionCdf({ [fam as Family]: 1 } as Partial<Record<Family, number>>, (a) => keep.has(a.name)),
      host: fam === 'k8s' ? pick(r, CLUSTERS) : `${fam}-${hex(r, 4)}`,
    };
  });
  const agentCdf = actionCdf({ emacs: 40, git: 30, ci: 20, k8s: 10 }, (a) =>
    /^(emacs\.(file|gptel|eval|shell)|git\.(commit|push|pr|checkout)|ci\.(pipeline|job\.retry|deploy)|k8s\.(deployments|pods\.logs))/.test(
      a.name,
    ),
  );
  const agents = Array.from(
    { length: AGENTS },
    (_, i): Actor => ({
      id: `${AGENT_NAMES[i % AGENT_NAMES.length]}-${String(i).padStart(2, '0')}`,
      type: 'ai_agent',
      actions: agentCdf,
      host: `agent-${hex(r, 6)}`,
      onBehalfOf: Math.floor(r() * 60),
    }),
  );
  return { humans, services, agents };
}

// ---- time --------------------------------------------------------------------------------------

/** Relative event rate of each hour of the 90 days (UTC business hours, quieter nights and weekends). */
function hourWeights(): Float64Array {
  const w = new Float64Array(DAYS * 24);
  for (let h = 0; h < w.length; h++) {
    const t = new Date(START_MS + h * 3_600_000);
    const dow = t.getUTCDay();
    const hod = t.getUTCHours();
    const weekend = dow === 0 || dow === 6;
    const day = hod >= 7 && hod < 19 ? 1 : hod >= 5 && hod < 22 ? 0.45 : 0.15; // services keep a floor at night
    w[h] = day * (weekend ? 0.3 : 1);
  }
  return w;
}

// ---- the stream --------------------------------------------------------------------------------

export interface GenRow {
  row: IndexRow;
  text: string;
}

const PRINCIPALS: Record<string, Ingest> = {
  emacs: { principal: 'apikey:emacs-fleet', method: 'apikey' },
  git: { principal: 'apikey:git-hooks', method: 'apikey' },
  kubernetes: { principal: 'mtls:k8s-audit-webhook', method: 'mtls' },
  cloudtrail: { principal: 'apikey:cloudtrail-forwarder', method: 'apikey' },
  ci: { principal: 'oidc:ci.acme.example', method: 'oidc' },
  stele: { principal: 'local', method: 'local' },
};

const TIERS = { operational: /^(k8s\.|emacs\.buffer\.)/ };

/**
 * The stream of `total` events over the 90 days, in log order. `next()` returns the event and its
 * leaf metadata; `rows(n)` the next n as query-store rows. Deterministic in (SEED, total).
 */
export class EventStream {
  private readonly r: R;
  private readonly humans: Actor[];
  private readonly services: Actor[];
  private readonly agents: Actor[];
  private readonly humanCdf = zipfCdf(HUMANS, 1);
  private readonly serviceCdf = zipfCdf(SERVICE_COUNT, 1);
  private readonly agentCdf = zipfCdf(AGENTS, 1);
  private readonly hourCdf: Float64Array;
  private hour = 0;
  private i = 0;
  private readonly keyIds = new Map<string, string>();

  constructor(
    readonly total: number,
    seed = SEED,
  ) {
    this.r = rng(seed);
    const a = makeActors(rng(seed ^ 0xac70));
    this.humans = a.humans;
    this.services = a.services;
    this.agents = a.agents;
    this.hourCdf = cdfOf([...hourWeights()]);
  }

  get index(): number {
    return this.i;
  }

  /** Receipt time (µs) of event i: the inverse of the hourly rate curve at (i + 0.5) / total. */
  private receivedMicros(i: number): number {
    const p = (i + 0.5) / this.total;
    while (this.hour < this.hourCdf.length - 1 && (this.hourCdf[this.hour] as number) < p) this.hour++;
    const lo = this.hour === 0 ? 0 : (this.hourCdf[this.hour - 1] as number);
    const hi = this.hourCdf[this.hour] as number;
    const f = hi > lo ? (p - lo) / (hi - lo) : 0;
    return Math.floor((START_MS + (this.hour + f) * 3_600_000) * 1000);
  }

  private keyId(tier: string, day: number): string {
    const k = `${tier}/${day}`;
    let id = this.keyIds.get(k);
    if (!id) {
      const kr = rng(day * 31 + tier.length);
      id = Buffer.from(hex(kr, 32), 'hex').toString('base64url');
      this.keyIds.set(k, id);
    }
    return id;
  }

  next(): { event: Event; record: LeafRecord; tier: string; ingest: Ingest } {
    const r = this.r;
    const i = this.i++;
    const received = this.receivedMicros(i);
    const lagU = r();
    const lagMicros = lagU < 0.7 ? Math.floor(r() * 1e6) : lagU < 0.95 ? Math.floor(r() * 10e6) : Math.floor(r() * 600e6);
    const timeMs = Math.floor((received - lagMicros) / 1000);

    const u = r();
    let actor: Actor;
    if (u < 0.45) actor = this.humans[draw(this.humanCdf, r())] as Actor;
    else if (u < 0.9) actor = this.services[draw(this.serviceCdf, r())] as Actor;
    else actor = this.agents[draw(this.agentCdf, r())] as Actor;
    const spec = ACTIONS[draw(actor.actions, r())] as ActionSpec;
    const human = actor.type === 'human' ? actor.id : humanId(actor.onBehalfOf ?? Math.floor(r() * HUMANS));
    const repo = REPOS[draw(REPO_CDF, r())] as string;
    const made = spec.make({ r, actor, human, repo });

    const o = r();
    const outcome = o < spec.fail ? 'failure' : o < spec.fail + spec.deny ? 'denied' : 'success';
    let reason: string | undefined;
    if (outcome !== 'success') {
      reason = pick(r, outcome === 'failure' ? FAILURE_REASONS : DENIAL_REASONS)
        .replace('{file}', `${word(r)}_${word(r)}.${pick(r, EXTS)}`)
        .replace('{word}', word(r))
        .replace('{verb}', spec.name.split('.').at(-1) as string);
    }

    const event: Event = {
      id: uuid4(r),
      time: new Date(timeMs).toISOString(),
      actor: { id: actor.id, type: actor.type, ...(actor.type === 'ai_agent' ? { on_behalf_of: human } : {}), verified: false },
      action: spec.name,
      source: {
        kind: spec.source,
        host: made.host ?? actor.host,
        ...(spec.source === 'emacs' ? { agent: 'stele.el', version: '0.3.1' } : {}),
      },
      ...(made.resource ? { resource: made.resource } : {}),
      outcome,
      ...(reason ? { reason } : {}),
      ...(spec.name.startsWith('stele.erase') || (spec.family === 'aws' && r() < 0.02)
        ? { subject: `customer:${Math.floor(r() * 1e6)}` }
        : {}),
      ...(made.data ? { data: made.data } : {}),
    };
    const tier = TIERS.operational.test(spec.name) ? 'operational' : 'compliance';
    const day = Math.floor((received / 1000 - START_MS) / DAY_MS);
    const record: LeafRecord = { v: 2, received: formatMicros(BigInt(received)), key: this.keyId(tier, day) };
    return { event, record, tier, ingest: PRINCIPALS[spec.source] as Ingest };
  }

  /** The next n events as query-store rows (the real `indexRow` and `ftsText`). */
  rows(n: number): GenRow[] {
    const out: GenRow[] = [];
    for (let k = 0; k < n && this.i < this.total; k++) {
      const idx = this.i;
      const { event, record, tier, ingest } = this.next();
      out.push({ row: indexRow(idx, record, event, tier, ingest), text: ftsText(event) });
    }
    return out;
  }
}
