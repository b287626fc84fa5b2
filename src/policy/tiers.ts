/**
 * Which retention tier an event belongs to. Runs once per event on the ingest path, so the globs
 * are compiled once into anchored RegExps and answers are cached per (source kind, action).
 */
import type { Policy, Tier } from './policy.js';

export type { Tier } from './policy.js';

/** Distinct (source kind, action) pairs remembered before the cache starts over. */
export const TIER_CACHE_LIMIT = 10_000;

/**
 * A glob as an anchored RegExp source: `*` matches any run of characters (dots included), every
 * other character only itself (regex metacharacters are escaped).
 */
export function globToRegExpSource(glob: string): string {
  return `^${glob.split(/\*+/).map(escapeRegExp).join('.*')}$`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** One RegExp matching any of `globs`, or null for an empty list. */
export function compileGlobs(globs: readonly string[]): RegExp | null {
  if (globs.length === 0) return null;
  return new RegExp(globs.map((g) => `(?:${globToRegExpSource(g)})`).join('|'), 's');
}

interface CompiledTier {
  tier: Tier;
  /** null: the tier has no match rule and receives only default-tier events. */
  actions: RegExp | null;
  /** null: any source. */
  sources: RegExp | null;
}

export class TierMatcher {
  readonly defaultTier: Tier;
  private readonly tiers: CompiledTier[];
  /** source kind → action → tier. */
  private readonly cache = new Map<string, Map<string, Tier>>();
  private cached = 0;

  constructor(policy: Policy) {
    const { tiers, defaultTier } = policy.retention;
    const found = tiers.find((t) => t.name === defaultTier);
    if (!found) throw new Error(`policy ${policy.source}: the default tier "${defaultTier}" is not one of its tiers`);
    this.defaultTier = found;
    this.tiers = tiers
      .filter((t) => t.actions.length > 0)
      .map((tier) => ({ tier, actions: compileGlobs(tier.actions), sources: compileGlobs(tier.sources) }));
  }

  /** The first tier, in file order, whose match fits the event; else the default tier. */
  tierFor(action: string, sourceKind: string): Tier {
    let byAction = this.cache.get(sourceKind);
    const hit = byAction?.get(action);
    if (hit) return hit;
    const tier = this.match(action, sourceKind);
    if (this.cached >= TIER_CACHE_LIMIT) {
      this.cache.clear();
      this.cached = 0;
      byAction = undefined;
    }
    if (!byAction) {
      byAction = new Map();
      this.cache.set(sourceKind, byAction);
    }
    byAction.set(action, tier);
    this.cached++;
    return tier;
  }

  private match(action: string, sourceKind: string): Tier {
    for (const t of this.tiers) {
      if (t.actions?.test(action) && (t.sources === null || t.sources.test(sourceKind))) return t.tier;
    }
    return this.defaultTier;
  }
}
