/**
 * Applications' links: every process that uses rdma-core publishes its links in a statistics file
 * (/dev/shm/rdmaq-stats-<pid>-<starttime>); each sample the agent reads them (StatsReader: validated, files of
 * dead processes swept) and reports them beside its own links, with `origin: 'app'` and the `app` name.
 *
 * - Ids: `<app>/<link id>:<tx|rx>` in the wire's id alphabet (a second process with the same app, link and
 *   direction gets `.<pid>`), so neither the hub nor /metrics needs a pid label.
 * - Histograms: the files hold cumulative buckets; the sample carries the deltas since the previous read,
 *   which the reader computes in place (latency.queueDelta / rttDelta: no copy of the cumulative lists here).
 * - A link whose process exited (or that closed) is reported once more, `down` with `gone: true`, in the
 *   first sample that no longer finds it, then forgotten (so /metrics drops its series at once).
 * - A file that cannot be read is logged once per reason, naming the file, and skipped; the rest goes on.
 */

import type { StatsFileSnapshot, StatsLink, StatsReader } from '@rdmaq/rdma-core';
import type { LinkSample, SparseBuckets } from '@rdmaq/shared';
import type { Logger } from './logger.js';

const ID_CHARS = /[^A-Za-z0-9._:@/>-]/g;

/** A string in the wire's id alphabet, at most `max` characters (never empty). */
export function idSafe(s: string, max: number): string {
  const t = s.replace(ID_CHARS, '_').slice(0, max);
  return t.length ? t : '_';
}

/** A short application label from a name or command line: `node /x/y/train.mjs --a` → `train.mjs`. */
export function appLabel(app: string): string {
  const words = app.trim().split(/\s+/);
  let w = words[0] ?? '';
  if (/(^|\/)(node|nodejs|bun|deno)$/.test(w) && words.length > 1) {
    w = words.find((x, i) => i > 0 && !x.startsWith('-')) ?? w;
  }
  if (w.includes('/')) w = w.slice(w.lastIndexOf('/') + 1);
  return idSafe(w || 'app', 48);
}

/** Deltas of cumulative sparse buckets (both index-ascending); a bucket that went down counts from 0. */
export function bucketDelta(now: SparseBuckets, before: SparseBuckets | undefined): SparseBuckets {
  if (!before || before.length === 0) return now.slice();
  const out: SparseBuckets = [];
  let j = 0;
  for (const [i, n] of now) {
    while (j < before.length && before[j]![0] < i) j++;
    const prev = j < before.length && before[j]![0] === i ? before[j]![1] : 0;
    const d = n >= prev ? n - prev : n;
    if (d > 0) out.push([i, d]);
  }
  return out;
}

interface Known {
  id: string;
  sample: LinkSample;
  pid: number;
  app: string;
}

export interface AppLinksOptions {
  reader: StatsReader;
  /** This node's id: an shm link's peer is this node. */
  nodeId: string;
  logger: Logger;
}

export class AppLinks {
  private readonly reader: StatsReader;
  private readonly nodeId: string;
  private readonly log: Logger;
  private known = new Map<string, Known>();
  /** Problems already logged, by file: logged again only when the reason changes. */
  private reported = new Map<string, string>();
  /** Files read in the last scan / problems seen (for tests and /healthz). */
  lastFiles: StatsFileSnapshot[] = [];
  lastProblems: Array<{ path: string; reason: string }> = [];
  /** Wall time of the last scan's read (ms), for the sampling cost. */
  lastReadMs = 0;

  constructor(opts: AppLinksOptions) {
    this.reader = opts.reader;
    this.nodeId = opts.nodeId;
    this.log = opts.logger.child({ component: 'apps' });
  }

  /** Reads every file once and returns the applications' link samples (gone ones included, once). */
  sample(): LinkSample[] {
    const t0 = performance.now();
    const scan = this.reader.scan();
    this.lastReadMs = performance.now() - t0;
    this.lastFiles = scan.files;
    this.lastProblems = scan.problems;
    const problemPaths = new Set<string>();
    for (const p of scan.problems) {
      problemPaths.add(p.path);
      if (this.reported.get(p.path) === p.reason) continue;
      this.reported.set(p.path, p.reason);
      this.log.warn({ file: p.path, reason: p.reason }, `statistics file ${p.path} skipped: ${p.reason}`);
    }
    for (const f of scan.files) {
      for (const b of f.badSlots) {
        const k = `${f.path}#${b.slot}`;
        problemPaths.add(k);
        if (this.reported.get(k) === b.reason) continue;
        this.reported.set(k, b.reason);
        this.log.warn(
          { file: f.path, slot: b.slot, reason: b.reason },
          `statistics file ${f.path}: slot ${b.slot} skipped: ${b.reason}`,
        );
      }
    }
    for (const k of [...this.reported.keys()]) if (!problemPaths.has(k)) this.reported.delete(k);
    for (const s of scan.swept) this.log.info({ file: s }, `removed ${s}: its process is gone`);

    const out: LinkSample[] = [];
    const next = new Map<string, Known>();
    const ids = new Set<string>();
    for (const f of scan.files) {
      const app = appLabel(f.app);
      for (const l of f.links) {
        const key = `${f.pid}:${f.startTime}:${l.slot}:${l.generation}`;
        const prev = this.known.get(key);
        let id = prev?.id ?? `${app}/${idSafe(l.linkId, 64)}:${l.direction}`;
        if (ids.has(id)) id = `${id.slice(0, 116)}.${f.pid}`;
        ids.add(id);
        const sample = this.toSample(id, app, f, l);
        out.push(sample);
        next.set(key, { id, sample, pid: f.pid, app });
      }
    }
    for (const [key, k] of this.known) {
      if (next.has(key)) continue;
      // Gone: its process exited (file swept or unreadable) or it closed the link. One last sample.
      out.push({
        ...k.sample,
        state: 'down',
        reason: `gone: process ${k.pid} (${k.app}) exited or closed the link`,
        gone: true,
        gauges: { ...k.sample.gauges, occupancyBytes: 0, peakOccupancyBytes: 0 },
        latency: { queue: [], rtt: [] },
      });
    }
    this.known = next;
    return out;
  }

  private toSample(id: string, app: string, f: StatsFileSnapshot, l: StatsLink): LinkSample {
    const c = l.counters;
    const errors: Record<string, number> = {};
    for (const [k, n] of Object.entries(c.errors)) errors[k.slice(0, 64)] = n;
    const peer =
      l.transport === 'shm' || l.peer === 'localhost' || l.peer === ''
        ? this.nodeId
        : idSafe(l.peer.replace(/:\d+$/, ''), 128);
    return {
      id,
      peer,
      direction: l.direction,
      transport: l.transport,
      provider: l.provider.slice(0, 64),
      state: l.state,
      counters: {
        records: c.records,
        bytes: c.bytes,
        completions: c.completions,
        creditUpdates: c.creditUpdates,
        backpressure: c.backpressure,
        wraps: c.wraps,
        resends: c.resends,
        reconnects: c.reconnects,
        errors,
      },
      gauges: { ...l.gauges },
      latency: {
        // The reader's increments since its previous scan (the first sample of a link: all of it).
        queue: l.latency.queueDelta,
        rtt: l.latency.rttDelta,
      },
      origin: 'app',
      app: f.app.length ? idSafe(app, 128) : app,
    };
  }

  close(): void {
    this.reader.close();
  }
}
