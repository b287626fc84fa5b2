/**
 * The keys this browser checks the log against: the log's verifier key, pinned the first time
 * the console sees it for an origin (and shown, to compare with the one the auditors hold), and
 * the witnesses' keys with the quorum, as the user sets them. Public keys only, so they are kept
 * in localStorage; credentials never are.
 */
export interface Trust {
  logKey: string;
  /** When the log key was pinned, and whether from the server (first use) or by the user. */
  pinned: { at: string; by: 'first-use' | 'user' };
  witnesses: string[];
  quorum: number;
}

const keyOf = (origin: string) => `stele.trust:${origin}`;

export function loadTrust(origin: string, serverKey: string): Trust {
  try {
    const t = JSON.parse(localStorage.getItem(keyOf(origin)) ?? 'null') as Trust | null;
    if (t?.logKey) return t;
  } catch {
    // unreadable: pin afresh
  }
  const t: Trust = { logKey: serverKey, pinned: { at: new Date().toISOString(), by: 'first-use' }, witnesses: [], quorum: 0 };
  saveTrust(origin, t);
  return t;
}

export function saveTrust(origin: string, t: Trust): void {
  localStorage.setItem(keyOf(origin), JSON.stringify(t));
}
