import { afterEach, describe, expect, it } from 'vitest';
import { NOTICE_INTERVAL_MS } from '../src/server/ingest.js';
import { MAX_HOURS_PER_ROUND } from '../src/server/model/fleet.js';
import { api, sample, startHub, TestAgent, type TestHub } from './helpers.js';

const L = [
  { id: 'l0', peer: 'p', records: 10, bytes: 100, latency: [[5000, 10]] as Array<[number, number]> },
];
const H = 3_600_000;

const hubs: TestHub[] = [];
afterEach(async () => {
  for (const h of hubs.splice(0)) await h.close();
});

const count = (hub: TestHub, sql: string, ...args: unknown[]) =>
  (hub.app.store.db.prepare(sql).get(...args) as { n: number }).n;

describe('sample timestamps are bounded by the hub clock', () => {
  it('a sample from 1970 or from the future is refused with a reason, acked, counted, and stores nothing', async () => {
    const hub = await startHub();
    hubs.push(hub);
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await a.hello('n1');
    a.send(sample(1, 0, L));
    const old = await a.waitFor((f) => f.type === 'error');
    expect(old).toMatchObject({ code: 'ERR_RDMAQ_SAMPLE_TIME' });
    expect(old.message).toMatch(/sample 1 refused \(not stored\): timestamped \d+ h before the hub clock/);
    await a.acked(1);
    hub.clock.t += NOTICE_INTERVAL_MS;
    a.send(sample(2, hub.clock.t + 60_000, L));
    await a.waitFor((f) => f.type === 'error' && /ahead of the hub clock/.test(String(f.message)));
    await a.acked(2);
    // The connection lives on: the next good sample is stored.
    a.send(sample(3, hub.clock.t, L));
    await a.acked(3);
    expect(hub.app.fleet.links.size).toBe(1);
    const stats = await api<{ rejected: Record<string, number> }>(hub, 'GET', '/api/ingest');
    expect(stats.body.rejected).toEqual({ sample_too_old: 1, sample_in_future: 1 });
    hub.app.fleet.flush(true);
    expect(count(hub, 'SELECT count(*) AS n FROM rollup_1m WHERE ts < ?', hub.clock.t - H)).toBe(0);
    expect(count(hub, 'SELECT count(*) AS n FROM host_1m WHERE ts < ?', hub.clock.t - H)).toBe(0);
    expect(count(hub, 'SELECT count(*) AS n FROM rollup_1m WHERE ts > ?', hub.clock.t)).toBe(0);
    expect(count(hub, 'SELECT sum(samples) AS n FROM rollup_1m')).toBe(1);
    // The operator sees it on the node too.
    const node = await api<{ events: Array<{ kind: string; message: string }> }>(hub, 'GET', '/api/nodes/n1');
    expect(node.body.events.filter((e) => e.kind === 'hub_error').length).toBe(2);
    // A replay after a reconnect does not bring them back.
    a.close();
    await a.closed;
    const b = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    expect(await b.hello('n1')).toBe(3);
    b.close();
  });

  it('events outside the window are dropped and counted too', async () => {
    const hub = await startHub();
    hubs.push(hub);
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await a.hello('n2');
    a.send({ type: 'event', v: 1, ts: 1, kind: 'agent', severity: 'info', message: 'from 1970' });
    await a.waitFor((f) => f.type === 'error' && f.code === 'ERR_RDMAQ_EVENT_TIME');
    expect(hub.app.ingest.rejected.get('event_too_old')).toBe(1);
    expect(hub.app.fleet.nodes.get('n2')!.events.every((e) => e.kind === 'hub_error')).toBe(true);
    a.close();
  });

  it('a stray 1970 row already stored is caught up in bounded steps, not hour by hour since 1970', async () => {
    const hub = await startHub();
    hubs.push(hub);
    const db = hub.app.store.db;
    db.prepare(
      `INSERT INTO rollup_1m (link_key, ts, seconds, up_s, records, bytes, completions, backpressure, errors, occ_sum, occ_max, samples, hist)
       VALUES ('x~y', 60000, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, NULL)`,
    ).run();
    db.prepare(
      "INSERT INTO host_1m (node_id, ts, samples, cpu_sum, rss_sum, lag_sum) VALUES ('x', 60000, 1, 1, 1, 1)",
    ).run();
    const t0 = performance.now();
    hub.app.fleet.flush();
    const ms = performance.now() - t0;
    // Before: ~490,000 hour roll-ups on the event loop (45–85 s). Now: a handful of statements.
    expect(ms).toBeLessThan(3000);
    expect(count(hub, 'SELECT count(*) AS n FROM rollup_1m WHERE ts < ?', H)).toBe(0);
    expect(count(hub, 'SELECT count(*) AS n FROM host_1m WHERE ts < ?', H)).toBe(0);
    expect(count(hub, 'SELECT count(*) AS n FROM rollup_1h WHERE ts < ?', H)).toBe(0);
  });

  it('rolling up many finished hours is chunked: at most MAX_HOURS_PER_ROUND per round', async () => {
    const hub = await startHub();
    hubs.push(hub);
    const db = hub.app.store.db;
    const hour0 = Math.floor(hub.clock.t / H) * H - 40 * H;
    const ins = db.prepare(
      `INSERT INTO rollup_1m (link_key, ts, seconds, up_s, records, bytes, completions, backpressure, errors, occ_sum, occ_max, samples, hist)
       VALUES ('x~y', ?, 60, 60, 600, 6000, 600, 0, 0, 0, 0, 60, NULL)`,
    );
    // Minutes in 30 of the last 40 hours (gaps are jumped over).
    for (let h = 0; h < 40; h++) if (h % 4 !== 3) ins.run(hour0 + h * H + 60_000);
    const first = await hub.app.fleet.flushIncremental();
    expect(first.hours).toBe(MAX_HOURS_PER_ROUND);
    const second = await hub.app.fleet.flushIncremental();
    expect(second.hours).toBe(30 - MAX_HOURS_PER_ROUND);
    expect(count(hub, 'SELECT count(*) AS n FROM rollup_1h')).toBe(30);
    expect((await hub.app.fleet.flushIncremental()).hours).toBe(0);
  });
});
