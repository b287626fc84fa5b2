import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_POLICY, type Policy, parsePolicy, type Tier } from './policy.js';
import { compileGlobs, globToRegExpSource, TIER_CACHE_LIMIT, TierMatcher } from './tiers.js';

const POLICY = parsePolicy(
  `version: 1
retention:
  default: compliance
  tiers:
    - name: k8s-noise
      keep: 30d
      match:
        actions: ["k8s.*.get", "k8s.*.list"]
        sources: ["kubernetes"]
    - name: operational
      keep: 90d
      match:
        actions: ["k8s.*", "emacs.buffer.*"]
    - name: compliance
      keep: forever
    - name: git
      keep: 1y
      match:
        actions: ["git.*"]
        sources: ["git", "github-*"]
`,
  'test.yaml',
);

const name = (m: TierMatcher, action: string, kind: string) => m.tierFor(action, kind).name;

/** A policy built by hand (bypassing parsePolicy's character rules), for glob edge cases. */
function handPolicy(tiers: Tier[], defaultTier = 'rest'): Policy {
  return {
    version: 1,
    source: 'hand',
    sha256: '',
    retention: {
      scheduleMs: 3_600_000,
      defaultTier,
      tiers: [...tiers, { name: 'rest', keepMs: null, encrypt: true, actions: [], sources: [] }],
    },
    identity: { issuers: [] },
    roles: [],
    cedar: null,
    alerts: { rules: [], notifiers: [] },
  };
}
const tier = (n: string, actions: string[], sources: string[] = []): Tier => ({
  name: n,
  keepMs: null,
  encrypt: true,
  actions,
  sources,
});

describe('TierMatcher', () => {
  const m = new TierMatcher(POLICY);

  test('the first tier in file order wins', () => {
    assert.equal(name(m, 'k8s.pods.get', 'kubernetes'), 'k8s-noise');
    assert.equal(name(m, 'k8s.pods.delete', 'kubernetes'), 'operational');
    assert.equal(name(m, 'emacs.buffer.save', 'emacs'), 'operational');
  });

  test('sources AND actions must both match', () => {
    assert.equal(name(m, 'k8s.pods.get', 'argo'), 'operational', 'k8s-noise needs source kubernetes');
    assert.equal(name(m, 'git.commit', 'git'), 'git');
    assert.equal(name(m, 'git.push', 'github-actions'), 'git');
    assert.equal(name(m, 'git.commit', 'emacs'), 'compliance', 'action matches, source does not');
    assert.equal(name(m, 'emacs.package.install', 'git'), 'compliance', 'source matches, action does not');
  });

  test('events no tier matches go to the default tier; a tier without match gets nothing else', () => {
    assert.equal(m.defaultTier.name, 'compliance');
    assert.equal(name(m, 'emacs.package.install', 'emacs'), 'compliance');
    assert.equal(name(m, 'compliance.thing', 'compliance'), 'compliance');
    const d = new TierMatcher(DEFAULT_POLICY);
    assert.equal(name(d, 'k8s.pods.delete', 'kubernetes'), 'default');
    assert.equal(d.tierFor('git.commit', 'git'), DEFAULT_POLICY.retention.tiers[0]);
  });

  test('globs are anchored; * spans dots; . is a literal dot', () => {
    assert.equal(name(m, 'k8s', 'kubernetes'), 'compliance', 'k8s.* needs the dot');
    assert.equal(name(m, 'xk8s.pods.delete', 'kubernetes'), 'compliance', 'anchored at the start');
    assert.equal(name(m, 'k8s.pods.get.extra', 'argo'), 'operational', 'k8s.* spans several segments');
    assert.equal(name(m, 'k8s.pods.get.extra', 'kubernetes'), 'operational', 'k8s.*.get is anchored at the end');
    assert.equal(name(m, 'k8sXpods.delete', 'kubernetes'), 'compliance', '. does not match X');
    assert.equal(name(m, 'emacs-buffer.save', 'emacs'), 'compliance');
    assert.equal(name(m, 'git.commit', 'gitlab'), 'compliance', 'source globs are anchored too');
  });

  test('regex metacharacters in hand-made tiers are literal', () => {
    const h = new TierMatcher(handPolicy([tier('odd', ['a+b.(c)|d*', 'x[y]?{2}^$\\'], ['s.e'])]));
    assert.equal(name(h, 'a+b.(c)|d', 's.e'), 'odd');
    assert.equal(name(h, 'a+b.(c)|dzzz.q', 's.e'), 'odd');
    assert.equal(name(h, 'x[y]?{2}^$\\', 's.e'), 'odd');
    assert.equal(name(h, 'aab.(c)|d', 's.e'), 'rest');
    assert.equal(name(h, 'a+b.c', 's.e'), 'rest');
    assert.equal(name(h, 'd', 's.e'), 'rest');
    assert.equal(name(h, 'xy', 's.e'), 'rest');
    assert.equal(name(h, 'a+b.(c)|d', 'sxe'), 'rest');
  });

  test('* alone matches everything, including the empty string and newlines', () => {
    const h = new TierMatcher(handPolicy([tier('all', ['*'], ['*'])]));
    assert.equal(name(h, 'a.b', ''), 'all');
    assert.equal(name(h, 'a.b', 'odd\nkind'), 'all');
  });

  test('the cache stays correct past its limit and per source', () => {
    const h = new TierMatcher(handPolicy([tier('even', ['*0', '*2', '*4', '*6', '*8'], ['a'])]));
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < TIER_CACHE_LIMIT + 50; i++) {
        const action = `x.${i}`;
        assert.equal(name(h, action, 'a'), i % 2 === 0 ? 'even' : 'rest');
        if (i % 1000 === 0) assert.equal(name(h, action, 'b'), 'rest');
      }
    }
  });

  test('works on a structured clone of the policy (as a worker thread receives it)', () => {
    const c = new TierMatcher(structuredClone(POLICY));
    assert.equal(name(c, 'k8s.pods.get', 'kubernetes'), 'k8s-noise');
    assert.equal(name(c, 'git.commit', 'emacs'), 'compliance');
  });

  test('a policy whose default tier is missing is refused', () => {
    assert.throws(() => new TierMatcher(handPolicy([], 'nope')), /default tier "nope"/);
  });
});

describe('globs', () => {
  test('compile to anchored RegExps', () => {
    assert.equal(globToRegExpSource('k8s.*'), '^k8s\\..*$');
    assert.equal(globToRegExpSource('*.get'), '^.*\\.get$');
    assert.equal(globToRegExpSource('a**b'), '^a.*b$');
    assert.equal(globToRegExpSource('git'), '^git$');
    assert.equal(compileGlobs([]), null);
    const re = compileGlobs(['git.*', 'emacs']);
    assert.ok(re?.test('git.commit'));
    assert.ok(re?.test('emacs'));
    assert.ok(!re?.test('emacs.x'));
    assert.ok(!re?.test('xgit.commit'));
  });
});
