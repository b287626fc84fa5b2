/**
 * The policy's alert rules as tests of one entry: run where the entry is prepared (an ingest
 * worker, which has its row and text at hand), so counting them (src/app/alerts.ts) needs no
 * parsing on the thread that sequences. Matches the way search does (match.ts), on the same row
 * and text the entry is indexed with.
 */
import type { Principal } from '../core/principal.js';
import type { IndexRow } from '../event/searchable.js';
import { isMember } from '../policy/access.js';
import type { AlertRule, Policy } from '../policy/types.js';
import { predicate, type Subject } from './match.js';
import { parseQuery } from './query.js';
import { isAscii, tokenize } from './unicode61.js';

/** The action of the events that record firings: never counted themselves. */
export const ALERT_ACTION = 'stele.alert';

/** One rule an entry matched: the entry's position in its batch, the rule, and its group's value. */
export interface RuleHit {
  at: number;
  rule: string;
  group: string | null;
}

const groupField: Record<NonNullable<AlertRule['groupBy']>, keyof IndexRow> = {
  actor: 'actor',
  principal: 'principal',
  action: 'action',
  source: 'source',
  host: 'host',
  tier: 'tier',
  subject: 'subject',
  resource: 'resource_id',
};

/** One entry as the rules' tests read it, tokenized (and lowercased) only if a test asks; reused from entry to entry. */
class Entry implements Subject {
  row: Record<string, unknown> = {};
  private text = '';
  private tokenList: string[] | null = null;
  private lower: string | null | undefined;

  reset(row: IndexRow, text: string): void {
    this.row = row as unknown as Record<string, unknown>;
    this.text = text;
    this.tokenList = null;
    this.lower = undefined;
  }

  get tokens(): readonly string[] {
    this.tokenList ??= tokenize(this.text);
    return this.tokenList;
  }

  get asciiLower(): string | null {
    if (this.lower === undefined) this.lower = isAscii(this.text) ? this.text.toLowerCase() : null;
    return this.lower;
  }
}

export class RuleMatcher {
  private readonly rules: { rule: AlertRule; test: (s: Subject) => boolean; field: keyof IndexRow | null }[];

  /** `nowMs`: what relative times in the queries (since:1h) are relative to. */
  constructor(policy: Policy, nowMs = Date.now()) {
    this.rules = policy.alerts.rules.map((rule) => {
      const root = parseQuery(rule.query);
      return {
        rule,
        test: root === null ? () => true : predicate(root, nowMs),
        field: rule.groupBy ? groupField[rule.groupBy] : null,
      };
    });
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  private readonly entry = new Entry();

  /** Adds to `out` each rule the entry at `at` (written by `by`) matches. */
  match(at: number, row: IndexRow, text: string, by: Principal, out: RuleHit[]): void {
    if (row.action === ALERT_ACTION) return;
    const entry = this.entry;
    entry.reset(row, text);
    for (const c of this.rules) {
      if (c.rule.except.length && c.rule.except.some((m) => isMember(by, m))) continue;
      if (!c.test(entry)) continue;
      out.push({ at, rule: c.rule.name, group: c.field === null ? null : String(row[c.field] ?? '') });
    }
  }
}
