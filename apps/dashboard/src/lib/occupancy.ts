/**
 * Ring occupancy per LINK (both ends), for the occupancy matrix and its history. Every link has a ring at
 * each end: the sender's mirror of bytes not yet acknowledged (its tx end's `occupancyBytes`) and the
 * receiver's ring (its rx end's). Either one full means trouble, so a link shows the worse of the two.
 * Pure functions (no DOM), unit-tested in occupancy.test.ts.
 */
import { compareIds } from './layout';

/** The fields of a link end (`LinkSummary`) read here. */
export interface RingEndLike {
  key: string;
  id: string;
  node: string;
  peer: string;
  direction: 'tx' | 'rx';
  state: string;
  occupancyBytes: number;
  capacityBytes: number;
  /** Exact rate, when known (the tables' rows); the overview's ends carry `stuck` judged by the hub instead. */
  recordsPerS?: number;
  /** Ring full with nothing moving, as the hub judged it on exact figures. */
  stuck?: boolean;
  /** Freshness of the reporting node (hub): a stale/offline end's figures are frozen. */
  freshness?: 'fresh' | 'stale' | 'offline' | undefined;
}

/** Occupancy from which a ring with nothing moving is "stuck" (as the hub's RingFullNoProgress rule). */
export const STUCK_RATIO = 0.95;

export interface LinkRing<E extends RingEndLike = RingEndLike> {
  /** `<sender>→<receiver>:<id>`, stable. */
  key: string;
  id: string;
  sender: string;
  receiver: string;
  tx: E | undefined;
  rx: E | undefined;
  /** Worse of both ends' fractions (0..1), counting frozen ends only when no fresh end reports; NaN: none. */
  fraction: number;
  /** The end that gave `fraction` (the one a click opens). */
  worst: E;
  /** An end ≥ STUCK_RATIO full while no record moves on it (fresh figures only). */
  stuck: boolean;
  /** Every reported end of this link is frozen (its agent stale or offline). */
  frozen: boolean;
}

const fresh = (e: RingEndLike) => e.freshness === undefined || e.freshness === 'fresh';
const frac = (e: RingEndLike) => (e.capacityBytes > 0 ? e.occupancyBytes / e.capacityBytes : Number.NaN);

/** Whether this end's own figures show a full ring with nothing moving. */
export function endStuck(e: RingEndLike): boolean {
  if (e.stuck !== undefined) return fresh(e) && e.stuck;
  return fresh(e) && e.capacityBytes > 0 && frac(e) >= STUCK_RATIO && !((e.recordsPerS ?? 0) > 0);
}

/** One entry per link, both ends joined (`<node>~<id>` tx end with `<peer>~<id>` rx end). */
export function linkRings<E extends RingEndLike>(ends: readonly E[]): LinkRing<E>[] {
  const by = new Map<string, { tx?: E; rx?: E; sender: string; receiver: string; id: string }>();
  for (const e of ends) {
    const sender = e.direction === 'tx' ? e.node : e.peer;
    const receiver = e.direction === 'tx' ? e.peer : e.node;
    const k = `${sender}→${receiver}:${e.id}`;
    let r = by.get(k);
    if (!r) {
      r = { sender, receiver, id: e.id };
      by.set(k, r);
    }
    r[e.direction] = e;
  }
  const out: LinkRing<E>[] = [];
  for (const [key, r] of by) {
    const present = [r.tx, r.rx].filter((e): e is E => e !== undefined);
    const live = present.filter(fresh);
    const judged = live.length ? live : present;
    let worst = judged[0]!;
    let fraction = frac(worst);
    for (const e of judged.slice(1)) {
      const f = frac(e);
      if (!(f <= fraction)) {
        worst = e;
        fraction = Number.isNaN(fraction) ? f : Math.max(fraction, f);
      }
    }
    out.push({
      key,
      id: r.id,
      sender: r.sender,
      receiver: r.receiver,
      tx: r.tx,
      rx: r.rx,
      fraction,
      worst,
      stuck: present.some(endStuck),
      frozen: live.length === 0,
    });
  }
  return out.sort(
    (a, b) => compareIds(a.sender, b.sender) || compareIds(a.receiver, b.receiver) || compareIds(a.id, b.id),
  );
}

export interface RingMatrix<E extends RingEndLike = RingEndLike> {
  senders: string[];
  receivers: string[];
  /** `sender\0receiver` → the links between them, worst first. */
  cells: Map<string, LinkRing<E>[]>;
}

export const cellKey = (sender: string, receiver: string) => `${sender}\u0000${receiver}`;

/** Severity order for one cell: stuck first, then the fuller ring. */
function worse(a: LinkRing, b: LinkRing): number {
  if (a.stuck !== b.stuck) return a.stuck ? -1 : 1;
  const fa = Number.isNaN(a.fraction) ? -1 : a.fraction;
  const fb = Number.isNaN(b.fraction) ? -1 : b.fraction;
  return fb - fa;
}

/** Sender × receiver matrix of the links (all hosts on both axes, so a mesh reads as a square). */
export function ringMatrix<E extends RingEndLike>(rings: readonly LinkRing<E>[]): RingMatrix<E> {
  const hosts = new Set<string>();
  const cells = new Map<string, LinkRing<E>[]>();
  for (const r of rings) {
    hosts.add(r.sender);
    hosts.add(r.receiver);
    const k = cellKey(r.sender, r.receiver);
    const c = cells.get(k);
    if (c) c.push(r);
    else cells.set(k, [r]);
  }
  for (const c of cells.values()) c.sort(worse);
  const ids = [...hosts].sort(compareIds);
  return { senders: ids, receivers: ids, cells };
}

/** Links worth a row in the history heatmap: stuck first, then the fullest, at most `max`. */
export function historyRows<E extends RingEndLike>(
  rings: readonly LinkRing<E>[],
  max: number,
): LinkRing<E>[] {
  return [...rings].sort((a, b) => worse(a, b) || a.key.localeCompare(b.key)).slice(0, max);
}

/**
 * Time × link grid from per-end history points (`occupancyBytes` per bucket): for each row, the worse of
 * both ends' fractions per column (NaN: no data). Columns are `stepMs` wide from `from`.
 */
export function occupancyGrid(
  rows: ReadonlyArray<{
    ends: ReadonlyArray<{
      capacityBytes: number;
      points: ReadonlyArray<{ ts: number; occupancyBytes: number | null }>;
    }>;
  }>,
  from: number,
  stepMs: number,
  columns: number,
): Float32Array[] {
  return rows.map((r) => {
    const out = new Float32Array(columns).fill(Number.NaN);
    for (const e of r.ends) {
      if (!(e.capacityBytes > 0)) continue;
      for (const p of e.points) {
        if (p.occupancyBytes === null) continue;
        const c = Math.floor((p.ts - from) / stepMs);
        if (c < 0 || c >= columns) continue;
        const f = p.occupancyBytes / e.capacityBytes;
        const cur = out[c]!;
        out[c] = Number.isNaN(cur) ? f : Math.max(cur, f);
      }
    }
    return out;
  });
}
