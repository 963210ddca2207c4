import type { Socket } from 'node:net';
import {
  applyLayoutDelta,
  applyTableDelta,
  bucketOf,
  bucketValue,
  type HistoryResponse,
  type LinkSummary,
  layoutFromSnapshot,
  type OverviewDelta,
  type OverviewLayout,
  type OverviewSnapshot,
  type TableDelta,
  type TableSnapshot,
  tableView,
} from '@rdmaq/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TestAgent as Agent,
  api,
  type LinkSpec,
  LiveClient,
  sample,
  startHub,
  type TestAgent,
  type TestHub,
  until,
} from './helpers.js';

const AGENTS = 40;
const LINKS = 4;
const SECONDS = 180;

const links = (node: number, i: number): LinkSpec[] =>
  Array.from({ length: LINKS }, (_, l) => ({
    id: `l${l}`,
    peer: `n${(node + l + 1) % AGENTS}`,
    records: i * 1000,
    bytes: i * 64_000,
    occupancy: 1024 * l,
    latency: [
      [1000, 99],
      [100_000, 1],
    ],
  }));

describe('simulated fleet: ingest, roll-ups, history, live', () => {
  let hub: TestHub;
  const agents: TestAgent[] = [];
  let start: number;

  beforeAll(async () => {
    hub = await startHub({ live: { maxBufferedBytes: 1024, tickMs: 1000, maxClients: 10 } });
    start = Math.floor((hub.clock.t - 10 * 60_000) / 60_000) * 60_000;
    for (let n = 0; n < AGENTS; n++) {
      const a = await Agent.connect(hub.wsUrl, hub.agentToken);
      expect(await a.hello(`n${n}`)).toBe(0);
      agents.push(a);
    }
    // Three minutes of 1 s samples per agent, sent as fast as the sockets take them.
    for (let i = 0; i < SECONDS; i++) {
      for (let n = 0; n < AGENTS; n++) agents[n]!.send(sample(i + 1, start + i * 1000, links(n, i)));
    }
    await Promise.all(agents.map((a) => a.acked(SECONDS)));
  }, 60_000);

  afterAll(async () => {
    for (const a of agents) a.close();
    await hub?.close();
  });

  it('counts every agent and link in /api/health', async () => {
    const r = await fetch(`${hub.url}/api/health`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({
      status: 'ok',
      agents: { connected: AGENTS, stale: 0, offline: 0, total: AGENTS },
      links: { up: AGENTS * LINKS, total: AGENTS * LINKS },
    });
  });

  it('serves 1 s history from memory, downsampled to the requested points', async () => {
    const r = await api<HistoryResponse>(
      hub,
      'GET',
      `/api/history?link=${encodeURIComponent('n3~l1')}&from=${start}&to=${start + SECONDS * 1000}&points=18`,
    );
    expect(r.status).toBe(200);
    expect(r.body.resolutionS).toBe(1);
    expect(r.body.stepMs).toBe(10_000);
    expect(r.body.points.length).toBeLessThanOrEqual(19);
    expect(r.body.points.length).toBeGreaterThanOrEqual(17);
    const mid = r.body.points[5]!;
    expect(mid.recordsPerS).toBeCloseTo(1000, 3);
    expect(mid.bytesPerS).toBeCloseTo(64_000, 1);
    expect(mid.occupancyBytes).toBe(1024);
    expect(mid.upRatio).toBe(1);
    // Per-second quantiles are kept as bucket indices: exact bucket values come back.
    expect(mid.p50Ns).toBe(bucketValue(bucketOf(1000)));
    expect(mid.p999Ns).toBe(bucketValue(bucketOf(100_000)));
  });

  it('writes 1-minute roll-ups with merged histograms and serves them', async () => {
    const { minutes } = hub.app.fleet.flush();
    expect(minutes).toBe(AGENTS * LINKS * 3);
    const n = hub.app.store.db.prepare('SELECT count(*) AS n, sum(samples) AS s FROM rollup_1m').get() as {
      n: number;
      s: number;
    };
    expect(n).toEqual({ n: AGENTS * LINKS * 3, s: AGENTS * LINKS * SECONDS });
    const r = await api<HistoryResponse>(
      hub,
      'GET',
      `/api/history?link=${encodeURIComponent('n7~l2')}&from=${hub.clock.t - 20 * 60_000}&to=${hub.clock.t}&points=100`,
    );
    expect(r.body.resolutionS).toBe(60);
    expect(r.body.points).toHaveLength(3);
    for (const p of r.body.points) {
      expect(p.recordsPerS).toBeCloseTo(1000, 3);
      // 99 % of records at 1 µs, 1 % at 100 µs: bucket-wise merged quantiles, not averaged ones.
      expect(p.p50Ns).toBe(bucketValue(bucketOf(1000)));
      expect(p.p99Ns).toBe(bucketValue(bucketOf(1000)));
      expect(p.p999Ns).toBe(bucketValue(bucketOf(100_000)));
    }
    // Downsampled to one point: the three minutes merge into one bucket.
    const one = await api<HistoryResponse>(
      hub,
      'GET',
      `/api/history?link=${encodeURIComponent('n7~l2')}&from=${hub.clock.t - 20 * 60_000}&to=${start + 180_000}&points=1`,
    );
    expect(one.body.resolutionS).toBe(60);
    expect(one.body.points).toHaveLength(1);
    expect(one.body.points[0]!.recordsPerS).toBeCloseTo(1000, 3);
  });

  it('rolls finished hours up to 1-hour rows (histograms merged bucket-wise)', async () => {
    hub.clock.t += 2 * 3600_000;
    // The samples' hour may already be final (and rolled) at the previous flush when this runs in the first
    // minutes of an hour; hours without minutes are not rolled: what counts is that every sample is in 1 h rows.
    hub.app.fleet.flush();
    const rows = hub.app.store.db.prepare('SELECT sum(samples) AS s, count(*) AS n FROM rollup_1h').get() as {
      s: number;
      n: number;
    };
    expect(rows.s).toBe(AGENTS * LINKS * SECONDS);
    const r = await api<HistoryResponse>(
      hub,
      'GET',
      `/api/history?link=${encodeURIComponent('n7~l2')}&from=${hub.clock.t - 8 * 86_400_000}&to=${hub.clock.t}&points=50`,
    );
    expect(r.body.resolutionS).toBe(3600);
    const total = r.body.points.reduce((s, p) => s + (p.recordsPerS ?? 0), 0);
    expect(total).toBeGreaterThan(0);
    expect(r.body.points.every((p) => p.p999Ns === bucketValue(bucketOf(100_000)))).toBe(true);
    hub.clock.t -= 2 * 3600_000;
  });

  it('two live clients, one slow, end with the same state; the slow one is resynced', async () => {
    const fast = await LiveClient.connect(hub);
    const slow = await LiveClient.connect(hub);
    // The overview's picture, and a window of the link table holding every link end (rows carry `ts`).
    const table = tableView({ table: 'links', sort: 'key', q: '', offset: 0, limit: AGENTS * LINKS });
    for (const c of [fast, slow]) {
      c.send({ type: 'subscribe', view: 'overview' });
      c.send({ type: 'subscribe', view: table });
    }
    const snapshots = (c: LiveClient) =>
      new Set(c.frames.filter((f) => f.type === 'snapshot').map((f) => f.view));
    await until(() => snapshots(fast).size === 2 && snapshots(slow).size === 2);
    const socket = (slow.ws as unknown as { _socket: Socket })._socket;
    socket.pause();
    let seq = SECONDS;
    const round = async () => {
      seq++;
      hub.clock.t += 1000;
      for (let n = 0; n < AGENTS; n++) agents[n]!.send(sample(seq, hub.clock.t, links(n, seq)));
      await Promise.all(agents.map((a) => a.acked(seq)));
      hub.app.tick();
    };
    // Keep producing deltas until the paused client's socket backs up and the hub starts merging.
    for (let i = 0; i < 2000 && hub.app.live.stats.merged < 3; i++) await round();
    expect(hub.app.live.stats.merged).toBeGreaterThanOrEqual(3);
    socket.resume();
    await until(() => slow.ws.bufferedAmount === 0);
    for (let i = 0; i < 50 && !slow.frames.some((f) => f.type === 'resync'); i++) {
      await round();
      await new Promise((r) => setTimeout(r, 20));
    }
    await round();
    const lastSeqOf = (c: LiveClient, view: string) =>
      Math.max(
        ...c.frames.filter((f) => f.view === view && typeof f.seq === 'number').map((f) => f.seq as number),
      );
    const target = seq;
    /** Replays a client's frames of one view, checking continuity. */
    const frames = (c: LiveClient, view: string) => {
      let last = 0;
      const out: Array<Record<string, unknown>> = [];
      for (const f of c.frames) {
        if (f.view !== view || (f.type !== 'snapshot' && f.type !== 'delta')) continue;
        // A delta continues the previous frame; a snapshot may jump ahead (the deltas it replaces).
        if (f.type === 'delta') expect(f.seq).toBe(last + 1);
        else expect(f.seq as number).toBeGreaterThanOrEqual(last);
        last = f.seq as number;
        out.push(f);
      }
      return out;
    };
    // As the page applies them (src/lib/views.ts).
    const rows = (c: LiveClient) => {
      let t: TableSnapshot | undefined;
      for (const f of frames(c, table)) {
        t = f.type === 'snapshot' ? (f.data as TableSnapshot) : applyTableDelta(t!, f.data as TableDelta);
      }
      return (t?.rows ?? []) as LinkSummary[];
    };
    const picture = (c: LiveClient) => {
      let l: OverviewLayout | undefined;
      for (const f of frames(c, 'overview')) {
        if (f.type === 'snapshot') l = layoutFromSnapshot((f.data as OverviewSnapshot).layout);
        else l = applyLayoutDelta(l!, (f.data as OverviewDelta).layout).layout;
      }
      return { ...l!, endStates: [...l!.endStates], blame: [...l!.blame] };
    };
    await until(
      () => {
        const s = rows(slow);
        return s.every((l) => l.ts === hub.clock.t) && s.length === AGENTS * LINKS;
      },
      20_000,
      'slow client catching up',
    );
    await until(() => rows(fast).every((l) => l.ts === hub.clock.t));
    await until(() => lastSeqOf(slow, 'overview') === lastSeqOf(fast, 'overview'));
    expect(slow.frames.some((f) => f.type === 'resync')).toBe(true);
    expect(fast.frames.some((f) => f.type === 'resync')).toBe(false);
    expect(rows(slow)).toEqual(rows(fast));
    expect(picture(slow)).toEqual(picture(fast));
    expect(picture(fast).ends).toHaveLength(AGENTS * LINKS);
    // Same position in the views' sequences, fewer frames for the slow one (its deltas were merged).
    expect(lastSeqOf(slow, table)).toBe(lastSeqOf(fast, table));
    const count = (c: LiveClient) => c.frames.filter((f) => f.view === table && f.type === 'delta').length;
    expect(count(slow)).toBeLessThan(count(fast));
    expect(target).toBe(seq);
    fast.close();
    slow.close();
  }, 120_000);

  it('overview size depends on links, not on history length; a steady fleet sends only its KPIs', async () => {
    const c = await LiveClient.connect(hub);
    c.send({ type: 'subscribe', view: 'overview' });
    await until(() => c.frames.some((f) => f.type === 'snapshot'));
    const snap = c.frames.find((f) => f.type === 'snapshot')!;
    const data = snap.data as OverviewSnapshot;
    expect(data.layout.ends).toHaveLength(AGENTS * LINKS);
    expect(data.layout.nodes).toHaveLength(AGENTS);
    // A packed layout: well under 100 bytes per link end (protocol 1 sent ~700 per end, every second).
    expect(JSON.stringify(snap).length).toBeLessThan(AGENTS * LINKS * 100 + AGENTS * 100 + 10_000);
    // Three rounds at the same rates: after the second, the picture does not move and the delta names no
    // entry (the first round's rates cover the gap since the previous test's last sample).
    let before = 0;
    for (let round = 0; round < 3; round++) {
      const seq = SECONDS + 10_000 + round;
      hub.clock.t += 1000;
      for (let n = 0; n < AGENTS; n++) agents[n]!.send(sample(seq, hub.clock.t, links(n, 10_000 + round)));
      await Promise.all(agents.map((a) => a.acked(seq)));
      before = c.frames.length;
      hub.app.tick();
    }
    await until(() => c.frames.slice(before).some((f) => f.type === 'delta' && f.view === 'overview'));
    const d = c.frames.slice(before).find((f) => f.type === 'delta' && f.view === 'overview')!;
    const layout = (d.data as OverviewDelta).layout;
    expect(layout.ends).toEqual([]);
    expect(layout.nodes).toEqual([]);
    expect(layout.endStates).toBe('');
    c.send({ type: 'subscribe', view: 'link:n1~l0' });
    await until(() => c.frames.some((f) => f.type === 'snapshot' && f.view === 'link:n1~l0'));
    c.send({ type: 'subscribe', view: 'node:nope' });
    await until(() => c.frames.some((f) => f.type === 'error' && f.code === 'ERR_RDMAQ_NO_VIEW'));
    c.close();
  });
});

describe('incremental hour roll-up (the timer path)', () => {
  it('rolls an hour in slices with the same result as in one piece', async () => {
    const hub = await startHub();
    try {
      const agent = await Agent.connect(hub.wsUrl, hub.agentToken);
      await agent.hello('inc');
      const t0 = Math.floor((hub.clock.t - 3 * 3600_000) / 3600_000) * 3600_000;
      const specs = (i: number): LinkSpec[] =>
        Array.from({ length: 7 }, (_, l) => ({
          id: `k${l}`,
          peer: 'x',
          records: i * 10,
          latency: [[2000 + l, 1]],
        }));
      // Samples every 10 s of agent time across two hours (a replay of old data, as after a long outage).
      let seq = 0;
      for (let t = t0; t < t0 + 2 * 3600_000; t += 10_000) agent.send(sample(++seq, t, specs(seq)));
      await agent.acked(seq);
      hub.app.fleet.flush(false, 5000, { rollHours: false });
      const r = await hub.app.fleet.flushIncremental(3);
      expect(r.hours).toBeGreaterThanOrEqual(2);
      const sliced = hub.app.store.db
        .prepare('SELECT link_key, ts, samples, records, hist FROM rollup_1h ORDER BY link_key, ts')
        .all();
      expect(sliced.length).toBeGreaterThanOrEqual(14);
      hub.app.store.destructive('DELETE FROM rollup_1h WHERE ts >= 0').run();
      hub.app.store.setSetting('rolled_hour_until', '0');
      hub.app.fleet.flush();
      const whole = hub.app.store.db
        .prepare('SELECT link_key, ts, samples, records, hist FROM rollup_1h ORDER BY link_key, ts')
        .all();
      expect(sliced).toEqual(whole);
      agent.close();
    } finally {
      await hub.close();
    }
  });
});

describe('retention', () => {
  it('deletes roll-ups past 7 / 90 days in bounded slices and keeps the rest', async () => {
    const hub = await startHub();
    try {
      const db = hub.app.store.db;
      const now = hub.clock.t;
      const day = 86_400_000;
      const ins1m = db.prepare(
        "INSERT INTO rollup_1m (link_key, ts, seconds, up_s, records, bytes, completions, backpressure, errors, occ_sum, occ_max, samples, hist) VALUES ('k', ?, 60, 60, 1, 1, 1, 0, 0, 0, 0, 60, NULL)",
      );
      const ins1h = db.prepare(
        "INSERT INTO rollup_1h (link_key, ts, seconds, up_s, records, bytes, completions, backpressure, errors, occ_sum, occ_max, samples, hist) VALUES ('k', ?, 3600, 3600, 1, 1, 1, 0, 0, 0, 0, 3600, NULL)",
      );
      for (const age of [10 * day, 8 * day, 6 * day, 1 * day]) ins1m.run(now - age);
      for (const age of [100 * day, 91 * day, 89 * day]) ins1h.run(now - age);
      db.prepare(
        "INSERT INTO agent_runs (node_id, run_id, last_seq, updated_at) VALUES ('n', 'old', 5, ?)",
      ).run(now - 95 * day);
      db.prepare(
        "INSERT INTO agent_runs (node_id, run_id, last_seq, updated_at) VALUES ('n', 'new', 5, ?)",
      ).run(now - day);
      const deleted = hub.app.fleet.retention(now);
      expect(deleted).toBe(2 + 2 + 1);
      const left = (t: string) => (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
      expect(left('rollup_1m')).toBe(2);
      expect(left('rollup_1h')).toBe(1);
      expect(left('agent_runs')).toBe(1);
    } finally {
      await hub.close();
    }
  });
});
