/**
 * The model's SQLite side: 1-minute roll-ups of every link end and host (written when a minute is over),
 * their 1-hour roll-ups, retention, the replay positions of agent runs and the list of known nodes. All
 * roll-up SQL of the hub is here; the live model (fleet.ts) never writes SQLite on the ingest path.
 */
import type Database from 'better-sqlite3';
import { decodeInto, encodeHist, type HistAcc, mergeBlobs } from '../hist.js';
import type { Store } from '../store/store.js';
import type { NodeEntry } from './types.js';

/** Replay positions kept per node (the newest runs). */
export const MAX_RUNS_PER_NODE = 32;
/** Hours rolled up per flush round at most (catch-up after a long stop continues at the next round). */
export const MAX_HOURS_PER_ROUND = 24;
/** One-hour delete slices per table per retention pass at most. */
export const MAX_RETENTION_SLICES = 200;

const HOUR = 3_600_000;
const hourOf = (t: number) => Math.floor(t / HOUR) * HOUR;

/** The roll-up tables of one kind of series, by resolution, and the column that names the series. */
export const ROLLUP_TABLES = {
  link: { key: 'link_key', 60: 'rollup_1m', 3600: 'rollup_1h' },
  host: { key: 'node_id', 60: 'host_1m', 3600: 'host_1h' },
} as const;
export type SeriesKind = keyof typeof ROLLUP_TABLES;

export interface RollupOptions {
  store: Store;
  now: () => number;
  minuteRetentionDays: number;
  hourRetentionDays: number;
}

export interface StoredNode {
  id: string;
  hostname: string;
  version: string;
  providers: string;
  last_seen: number;
}

export class Rollups {
  private readonly db: Database.Database;
  private readonly stmts;
  /** Hours already rolled that got late minutes: rolled again at the next round. */
  private readonly dirtyHours = new Set<number>();
  private rolling = false;

  constructor(private readonly opts: RollupOptions) {
    this.db = opts.store.db;
    // Bucket-wise histogram merge inside SQLite: scalar for upserts, aggregate for hour roll-ups.
    this.db.function('merge_hist', (a: unknown, b: unknown) =>
      mergeBlobs(a as Buffer | null, b as Buffer | null),
    );
    this.db.aggregate('hist_sum', {
      start: () => new Map<number, number>(),
      step: (acc: HistAcc, blob: unknown) => {
        decodeInto(acc, blob as Buffer | null);
        return acc;
      },
      result: (acc: HistAcc) => encodeHist(acc),
    });
    const cols =
      'seconds, up_s, records, bytes, completions, backpressure, errors, occ_sum, occ_max, samples, hist';
    this.stmts = {
      upsert1m: this.db.prepare(
        `INSERT INTO rollup_1m (link_key, ts, ${cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(link_key, ts) DO UPDATE SET seconds = seconds + excluded.seconds, up_s = up_s + excluded.up_s,
           records = records + excluded.records, bytes = bytes + excluded.bytes,
           completions = completions + excluded.completions, backpressure = backpressure + excluded.backpressure,
           errors = errors + excluded.errors, occ_sum = occ_sum + excluded.occ_sum,
           occ_max = max(occ_max, excluded.occ_max), samples = samples + excluded.samples,
           hist = merge_hist(hist, excluded.hist)`,
      ),
      upsertHost1m: this.db.prepare(
        `INSERT INTO host_1m (node_id, ts, samples, cpu_sum, rss_sum, lag_sum) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(node_id, ts) DO UPDATE SET samples = samples + excluded.samples,
           cpu_sum = cpu_sum + excluded.cpu_sum, rss_sum = rss_sum + excluded.rss_sum, lag_sum = lag_sum + excluded.lag_sum`,
      ),
      rollHour: this.db.prepare(
        `INSERT OR REPLACE INTO rollup_1h (link_key, ts, ${cols})
         SELECT link_key, @hour, sum(seconds), sum(up_s), sum(records), sum(bytes), sum(completions), sum(backpressure),
                sum(errors), sum(occ_sum), max(occ_max), sum(samples), hist_sum(hist)
         FROM rollup_1m WHERE ts >= @hour AND ts < @hour + 3600000 GROUP BY link_key`,
      ),
      rollHourRange: this.db.prepare(
        `INSERT OR REPLACE INTO rollup_1h (link_key, ts, ${cols})
         SELECT link_key, @hour, sum(seconds), sum(up_s), sum(records), sum(bytes), sum(completions), sum(backpressure),
                sum(errors), sum(occ_sum), max(occ_max), sum(samples), hist_sum(hist)
         FROM rollup_1m WHERE link_key >= @lo AND link_key <= @hi AND ts >= @hour AND ts < @hour + 3600000
         GROUP BY link_key`,
      ),
      rollHostHour: this.db.prepare(
        `INSERT OR REPLACE INTO host_1h (node_id, ts, samples, cpu_sum, rss_sum, lag_sum)
         SELECT node_id, @hour, sum(samples), sum(cpu_sum), sum(rss_sum), sum(lag_sum)
         FROM host_1m WHERE ts >= @hour AND ts < @hour + 3600000 GROUP BY node_id`,
      ),
      hourKeys: this.db.prepare(
        'SELECT DISTINCT link_key FROM rollup_1m WHERE ts >= ? AND ts < ? ORDER BY link_key',
      ),
      nextMinute: this.db.prepare('SELECT min(ts) AS ts FROM rollup_1m WHERE ts >= ?'),
      nextHostMinute: this.db.prepare('SELECT min(ts) AS ts FROM host_1m WHERE ts >= ?'),
      // A run's replay position belongs to the token that wrote it (key node, run, token): another token
      // naming the same run id starts over, and never moves the owner's position.
      upsertRun: this.db.prepare(
        `INSERT INTO agent_runs (node_id, run_id, token_id, last_seq, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(node_id, run_id, token_id) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq),
           updated_at = excluded.updated_at`,
      ),
      getRun: this.db.prepare(
        'SELECT last_seq FROM agent_runs WHERE node_id = ? AND run_id = ? AND token_id = ?',
      ),
      pruneRuns: opts.store.destructive(
        `DELETE FROM agent_runs WHERE node_id = ? AND rowid NOT IN
           (SELECT rowid FROM agent_runs WHERE node_id = ? ORDER BY updated_at DESC LIMIT ?)`,
      ),
      upsertNode: this.db.prepare(
        `INSERT INTO nodes (id, hostname, version, providers, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET hostname = excluded.hostname, version = excluded.version,
           providers = excluded.providers, last_seen = excluded.last_seen`,
      ),
      allNodes: this.db.prepare('SELECT id, hostname, version, providers, last_seen FROM nodes'),
    };
  }

  // ───────────────────────────── nodes and replay positions ─────────────────────────────

  storedNodes(): StoredNode[] {
    return this.stmts.allNodes.all() as StoredNode[];
  }

  saveNode(n: NodeEntry, now: number): void {
    this.stmts.upsertNode.run(n.id, n.hostname, n.version, JSON.stringify(n.providers), now, now);
  }

  saveRun(node: string, run: string, token: string, lastSeq: number, now: number): void {
    this.stmts.upsertRun.run(node, run, token, lastSeq, now);
  }

  /**
   * The replay position of (node, run) owned by `token`, else one stored before tokens owned runs (token
   * ''). Prunes the node's positions to its newest MAX_RUNS_PER_NODE runs first: an agent inventing run
   * ids cannot grow the table.
   */
  runPosition(node: string, run: string, token: string): number | undefined {
    this.stmts.pruneRuns.run(node, node, MAX_RUNS_PER_NODE);
    const row = (this.stmts.getRun.get(node, run, token) ?? this.stmts.getRun.get(node, run, '')) as
      | { last_seq: number }
      | undefined;
    return row?.last_seq;
  }

  // ───────────────────────────── minutes ─────────────────────────────

  /**
   * Writes every minute of `nodes` (hosts and link ends) that started at or before `cutoff`, and the dirty
   * replay positions, in one transaction; the written minutes leave memory. Returns the link minutes written.
   */
  writeMinutes(nodes: Iterable<NodeEntry>, cutoff: number, now: number): number {
    let minutes = 0;
    const rolledUntil = Number(this.opts.store.getSetting('rolled_hour_until') ?? 0);
    this.db.transaction(() => {
      for (const n of nodes) {
        for (const [m, acc] of n.minutes) {
          if (m > cutoff) continue;
          this.stmts.upsertHost1m.run(n.id, m, acc.samples, acc.cpu, acc.rss, acc.lag);
          n.minutes.delete(m);
          if (m < rolledUntil) this.dirtyHours.add(hourOf(m));
        }
        for (const l of n.links.values()) {
          for (const [m, a] of l.minutes) {
            if (m > cutoff) continue;
            this.stmts.upsert1m.run(
              l.key,
              m,
              a.seconds,
              a.upS,
              a.records,
              a.bytes,
              a.completions,
              a.backpressure,
              a.errors,
              a.occSum,
              a.occMax,
              a.samples,
              encodeHist(a.hist),
            );
            l.minutes.delete(m);
            minutes++;
            if (m < rolledUntil) this.dirtyHours.add(hourOf(m));
          }
        }
        if (n.runDirty) {
          this.stmts.upsertRun.run(n.id, n.runId, n.runToken ?? '', n.lastSeq, now);
          n.runDirty = false;
        }
      }
    })();
    return minutes;
  }

  // ───────────────────────────── hours ─────────────────────────────

  /** Earliest minute row (links or hosts) at or after `from`, null when none. */
  private nextMinute(from: number): number | null {
    const a = (this.stmts.nextMinute.get(from) as { ts: number | null }).ts;
    const b = (this.stmts.nextHostMinute.get(from) as { ts: number | null }).ts;
    if (a === null) return b;
    if (b === null) return a;
    return Math.min(a, b);
  }

  /**
   * Hours to roll: finished ones since the last roll, hours that got late minutes, and (force) the current.
   * Bounded: at most MAX_HOURS_PER_ROUND per call (the rest next round), never before the minute retention
   * (those minutes are deleted anyway), and hours without minutes are jumped over, not walked one by one —
   * a stray old row once made the hub walk every hour since 1970 on the event loop.
   */
  private hoursDue(force: boolean): { todo: number[]; until: number } {
    const now = this.opts.now();
    let until = Number(this.opts.store.getSetting('rolled_hour_until') ?? 0);
    const todo = new Set(this.dirtyHours);
    this.dirtyHours.clear();
    const oldest = hourOf(now - this.opts.minuteRetentionDays * 86_400_000);
    if (until < oldest) until = oldest;
    // An hour is final once its last minute was flushed (minute end + grace), or at shutdown.
    const limit = force ? now : now - 60_000 - 10_000;
    let rounds = 0;
    while (until + HOUR <= limit && todo.size < MAX_HOURS_PER_ROUND && rounds++ < 2 * MAX_HOURS_PER_ROUND) {
      const next = this.nextMinute(until);
      if (next === null) {
        // Nothing stored from `until` on: every finished hour up to `limit` is done.
        until = Math.max(until, hourOf(limit));
        break;
      }
      const hour = hourOf(next);
      if (hour > until) {
        until = Math.min(hour, hourOf(limit));
        continue;
      }
      todo.add(until);
      until += HOUR;
    }
    if (force) todo.add(hourOf(now));
    return { todo: [...todo].sort((a, b) => a - b), until };
  }

  /** Rolls due hours from the minute tables into the hour tables in one transaction (tests, shutdown). */
  rollHoursNow(force: boolean): number {
    const { todo, until } = this.hoursDue(force);
    if (!todo.length) return 0;
    this.db.transaction(() => {
      for (const hour of todo) {
        this.stmts.rollHour.run({ hour });
        this.stmts.rollHostHour.run({ hour });
      }
      // Under `force`, the current hour is partial: it is rolled again when it completes.
      this.opts.store.setSetting('rolled_hour_until', String(until));
    })();
    return todo.length;
  }

  /**
   * The timer's roll: each due hour in slices of `sliceKeys` link keys per transaction, yielding to the
   * event loop between slices — an hour of 8,000 links is 480,000 minute rows whose histograms are merged,
   * too long to hold the loop in one piece. One roll at a time.
   */
  async rollHoursIncremental(sliceKeys: number): Promise<number> {
    if (this.rolling) return 0;
    this.rolling = true;
    try {
      const { todo, until } = this.hoursDue(false);
      for (const hour of todo) {
        const keys = (this.stmts.hourKeys.all(hour, hour + HOUR) as Array<{ link_key: string }>).map(
          (r) => r.link_key,
        );
        for (let i = 0; i < keys.length; i += sliceKeys) {
          const slice = keys.slice(i, i + sliceKeys);
          this.stmts.rollHourRange.run({ hour, lo: slice[0], hi: slice[slice.length - 1] });
          await new Promise((r) => setImmediate(r));
        }
        this.stmts.rollHostHour.run({ hour });
      }
      if (todo.length) this.opts.store.setSetting('rolled_hour_until', String(until));
      return todo.length;
    } finally {
      this.rolling = false;
    }
  }

  // ───────────────────────────── retention ─────────────────────────────

  /** Deletes roll-ups past retention, oldest first, in bounded slices. */
  retention(now: number): number {
    const day = 86_400_000;
    let deleted = 0;
    const plan: Array<[string, number]> = [
      ['rollup_1m', now - this.opts.minuteRetentionDays * day],
      ['host_1m', now - this.opts.minuteRetentionDays * day],
      ['rollup_1h', now - this.opts.hourRetentionDays * day],
      ['host_1h', now - this.opts.hourRetentionDays * day],
      ['alert_events', now - this.opts.hourRetentionDays * day],
    ];
    for (const [table, before] of plan) {
      const first = this.db.prepare(`SELECT min(ts) AS ts FROM ${table}`);
      const del = this.opts.store.destructive(`DELETE FROM ${table} WHERE ts >= ? AND ts < ?`);
      // Slices of one hour keep each statement (and the time the event loop is held) short; each slice
      // starts at the oldest row left, so empty hours (a stray row from 1970) cost nothing, and one call
      // deletes at most MAX_RETENTION_SLICES slices (the rest at the next).
      for (let k = 0; k < MAX_RETENTION_SLICES; k++) {
        const min = (first.get() as { ts: number | null }).ts;
        if (min === null || min >= before) break;
        deleted += del.run(min, Math.min(min + HOUR, before)).changes;
      }
    }
    // Replay positions of agent runs nobody has heard of for as long as hourly history is kept.
    deleted += this.opts.store
      .destructive('DELETE FROM agent_runs WHERE updated_at < ?')
      .run(now - this.opts.hourRetentionDays * day).changes;
    return deleted;
  }

  // ───────────────────────────── reads ─────────────────────────────

  /**
   * The roll-up rows of one series (a link end or a host) at `resolutionS`, `ts` in [from, to), oldest
   * first, with the named columns. Table and column names come from ROLLUP_TABLES and the history specs
   * (history.ts), never from a request.
   */
  rows(
    kind: SeriesKind,
    resolutionS: 60 | 3600,
    key: string,
    columns: readonly string[],
    from: number,
    to: number,
  ): Array<Record<string, number | Buffer | null>> {
    const t = ROLLUP_TABLES[kind];
    return this.db
      .prepare(
        `SELECT ts, ${columns.join(', ')} FROM ${t[resolutionS]} WHERE ${t.key} = ? AND ts >= ? AND ts < ? ORDER BY ts`,
      )
      .all(key, from, to) as Array<Record<string, number | Buffer | null>>;
  }
}
