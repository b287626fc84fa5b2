/**
 * The benchmark's queries: each type has several distinct parameter values (different actors,
 * weeks, prefixes, words), so a type's numbers are not one cached answer.
 */
import { codename, humanId, START_MS } from './gen.js';

export interface QueryType {
  key: string;
  label: string;
  kind: 'field' | 'text';
  /** Target for p95, ms. */
  targetMs: number;
  values: string[];
}

const DAY_MS = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
/** `since:… until:…` for the 7 days starting `day` days into the 90. */
const week = (day: number) => `since:${iso(START_MS + day * DAY_MS)} until:${iso(START_MS + (day + 7) * DAY_MS)}`;

export const FIELD_TARGET_MS = 50;
export const TEXT_TARGET_MS = 200;

export const QUERY_TYPES: readonly QueryType[] = [
  {
    key: 'actor-week',
    label: 'actor + one-week range',
    kind: 'field',
    targetMs: FIELD_TARGET_MS,
    values: [
      `actor:${humanId(0)} ${week(80)}`, // the busiest person (rank 1 of 500)
      `actor:${humanId(42)} ${week(10)}`, // rank 43
      `actor:${humanId(250)} ${week(45)}`, // rank 251
      `actor:${humanId(499)} ${week(62)}`, // the quietest person
      `actor:system:serviceaccount:argocd:argocd-application-controller ${week(30)}`, // the busiest actor of all
      `actor:claude-code-00 ${week(70)}`, // the busiest AI agent
    ],
  },
  {
    key: 'action-outcome',
    label: 'action wildcard + outcome',
    kind: 'field',
    targetMs: FIELD_TARGET_MS,
    values: [
      'action:k8s.* outcome:failure',
      'action:emacs.package.* outcome:denied',
      'action:ci.* outcome:failure',
      'action:git.* outcome:denied',
      'action:aws.iam.* outcome:denied',
      'action:k8s.secrets.* outcome:denied',
    ],
  },
  {
    key: 'text-common',
    label: 'full text, moderately common word',
    kind: 'text',
    targetMs: TEXT_TARGET_MS,
    values: ['timeout', 'refactor', 'deadlock', 'magit'],
  },
  {
    key: 'text-rare',
    label: 'full text, rare word (a project codename)',
    kind: 'text',
    targetMs: TEXT_TARGET_MS,
    values: [codename(123), codename(4567), codename(9876), codename(17777)],
  },
  {
    key: 'text-phrase',
    label: 'full text, phrase',
    kind: 'text',
    targetMs: TEXT_TARGET_MS,
    values: ['"connection refused"', '"merge conflict"', '"pull request"', '"out of memory"'],
  },
];

/** The peer's SQL for a full-text value: a substring match on the text column (quotes removed). */
export function likePattern(value: string): string {
  return `%${value.replace(/^"|"$/g, '')}%`;
}
