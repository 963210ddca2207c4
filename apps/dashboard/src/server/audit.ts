/**
 * The audit trail: who changed what, when (agent tokens, users, rules, silences, acknowledgements, password
 * changes, first-admin setup). One row per successful state-changing API call, written by the API layer
 * after the change; never a secret (token values and passwords are not recorded, only that they changed).
 *
 * Bounded everywhere: every field is clipped (the table's CHECKs refuse anything longer), a page is at most
 * MAX_AUDIT_PAGE rows, and retention keeps at most `maxRows` rows and nothing older than `retentionDays`,
 * pruned oldest first in slices of PRUNE_SLICE rows (bounded DELETEs, never one unbounded statement).
 */
import type { Role } from '@rdmaq/shared';
import type { Logger } from './log.js';
import type { Store } from './store/store.js';

/** Field limits (also CHECK constraints in migration 5). */
export const AUDIT_LIMITS = { user: 64, action: 64, target: 256, detail: 4096, address: 64 } as const;
/** Most rows one `GET /api/audit` page returns. */
export const MAX_AUDIT_PAGE = 500;
/** Most rows one prune statement deletes. */
export const PRUNE_SLICE = 1000;
/** Slices per prune pass (the rest goes at the next pass). */
const PRUNE_SLICES_PER_PASS = 20;
/** A prune pass runs after this many records (besides the hub's hourly timer). */
const PRUNE_EVERY = 256;

export interface AuditOptions {
  /** Newest rows kept (default 100,000). */
  maxRows: number;
  /** Rows older than this are deleted (default 90 days). */
  retentionDays: number;
}

export const DEFAULT_AUDIT: AuditOptions = { maxRows: 100_000, retentionDays: 90 };

export interface AuditInput {
  user: string;
  role: Role | '';
  /** Dotted verb, e.g. `token.create`, `user.delete`, `rule.update`, `alert.ack`. */
  action: string;
  /** What it acted on: a token id, a user name, a rule id, an alert id, a silence id. */
  target?: string;
  /** Small JSON object with what changed (never a secret). Clipped to AUDIT_LIMITS.detail. */
  detail?: Record<string, unknown>;
  /** Client address as the hub saw it. */
  address?: string;
}

export interface AuditEntry {
  id: number;
  ts: number;
  user: string;
  role: string;
  action: string;
  target: string;
  detail: Record<string, unknown>;
  address: string | null;
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** The detail as JSON of at most `max` characters; an oversized object becomes `{"truncated": "<prefix>"}`. */
function detailJson(detail: Record<string, unknown> | undefined, max: number): string {
  if (!detail) return '{}';
  let s: string;
  try {
    s = JSON.stringify(detail) ?? '{}';
  } catch {
    return '{"unserialisable":true}';
  }
  if (s.length <= max) return s;
  // Room for the wrapper and JSON escaping of the prefix (each character may take up to 6).
  const prefix = s.slice(0, Math.floor((max - 32) / 6));
  return JSON.stringify({ truncated: prefix });
}

export class AuditLog {
  private sincePrune = 0;
  private readonly insert;
  private readonly page;
  private readonly pageBefore;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly now: () => number,
    readonly opts: AuditOptions = DEFAULT_AUDIT,
  ) {
    this.insert = store.db.prepare(
      'INSERT INTO audit (ts, user, role, action, target, detail, address) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    const cols = 'id, ts, user, role, action, target, detail, address';
    this.page = store.db.prepare(`SELECT ${cols} FROM audit ORDER BY id DESC LIMIT ?`);
    this.pageBefore = store.db.prepare(`SELECT ${cols} FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?`);
  }

  /** Records one action. Never throws: a failing audit write is logged and the action stands. */
  record(e: AuditInput): void {
    try {
      this.insert.run(
        this.now(),
        clip(e.user, AUDIT_LIMITS.user),
        e.role,
        clip(e.action, AUDIT_LIMITS.action),
        clip(e.target ?? '', AUDIT_LIMITS.target),
        detailJson(e.detail, AUDIT_LIMITS.detail),
        e.address ? clip(e.address, AUDIT_LIMITS.address) : null,
      );
      this.log.info(
        { audit: { user: e.user, action: e.action, target: e.target ?? '' } },
        `audit: ${e.user} ${e.action}`,
      );
    } catch (err) {
      this.log.error({ err, action: e.action }, 'audit record failed');
    }
    if (++this.sincePrune >= PRUNE_EVERY) this.prune();
  }

  /**
   * Newest first, at most `limit` rows with id below `before` (a cursor from the previous page's `next`).
   * `next` is absent on the last page.
   */
  list(limit: number, before?: number): { entries: AuditEntry[]; next?: number } {
    const n = Math.max(1, Math.min(MAX_AUDIT_PAGE, Math.floor(limit)));
    // One more than asked tells whether there is a next page.
    const rows = (before === undefined ? this.page.all(n + 1) : this.pageBefore.all(before, n + 1)) as Array<
      Omit<AuditEntry, 'detail'> & { detail: string }
    >;
    const more = rows.length > n;
    const entries = rows.slice(0, n).map((r) => {
      let detail: Record<string, unknown> = {};
      try {
        detail = JSON.parse(r.detail) as Record<string, unknown>;
      } catch {
        // shown empty
      }
      return { ...r, detail };
    });
    return more ? { entries, next: entries.at(-1)!.id } : { entries };
  }

  count(): number {
    return (this.store.db.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n;
  }

  /**
   * Deletes rows past retention (older than retentionDays, beyond the newest maxRows), oldest first, in
   * slices of PRUNE_SLICE; at most PRUNE_SLICES_PER_PASS slices per call. Returns the rows deleted.
   */
  prune(): number {
    this.sincePrune = 0;
    const cutoff = this.now() - this.opts.retentionDays * 86_400_000;
    const byAge = this.store.destructive(
      'DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE ts < ? ORDER BY id LIMIT ?)',
    );
    const byCount = this.store.destructive(
      'DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE id <= ? ORDER BY id LIMIT ?)',
    );
    let deleted = 0;
    try {
      for (let i = 0; i < PRUNE_SLICES_PER_PASS; i++) {
        let n = byAge.run(cutoff, PRUNE_SLICE).changes;
        if (n < PRUNE_SLICE) {
          // Ids grow by one per row: everything at or below (newest id − maxRows) is beyond the newest maxRows.
          const newest = (
            this.store.db.prepare('SELECT max(id) AS m FROM audit').get() as { m: number | null }
          ).m;
          if (newest !== null) n += byCount.run(newest - this.opts.maxRows, PRUNE_SLICE - n).changes;
        }
        deleted += n;
        if (n < PRUNE_SLICE) break;
      }
    } catch (err) {
      this.log.error({ err }, 'audit retention failed');
    }
    return deleted;
  }
}
