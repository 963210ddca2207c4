import {
  type Alert,
  applyTableDelta,
  LIVE_PROTOCOL_VERSION,
  type LinkSnapshot,
  type LinkSummary,
  type LivePoint,
  type TableDelta,
  type TableSnapshot,
  tableView,
} from '@rdmaq/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, LiveClient, sample, startHub, TestAgent, type TestHub, until } from './helpers.js';

describe('live views: link, node and alerts', () => {
  let hub: TestHub;
  let agent: TestAgent;
  let seq = 0;
  const send = async (state: 'up' | 'down' = 'up') => {
    hub.clock.t += 1000;
    seq++;
    agent.send(
      sample(seq, hub.clock.t, [{ id: 'x/1', peer: 'p', records: seq * 10, state, latency: [[3000, 5]] }]),
    );
    await agent.acked(seq);
  };
  beforeAll(async () => {
    hub = await startHub();
    agent = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await agent.hello('lv');
    await send();
    await send();
  });
  afterAll(async () => {
    agent?.close();
    await hub?.close();
  });

  it('welcome, snapshots, then one delta per view per tick with new points appended', async () => {
    const c = await LiveClient.connect(hub);
    await until(() => c.frames.some((f) => f.type === 'welcome'));
    expect(c.frames[0]).toMatchObject({
      type: 'welcome',
      v: LIVE_PROTOCOL_VERSION,
      user: { name: 'admin', role: 'admin' },
    });
    for (const view of ['link:lv~x/1', 'node:lv', 'alerts']) c.send({ type: 'subscribe', view });
    await until(() => c.frames.filter((f) => f.type === 'snapshot').length === 3);
    const snap = c.frames.find((f) => f.type === 'snapshot' && f.view === 'link:lv~x/1')!;
    const data = snap.data as LinkSnapshot;
    expect(data.link.key).toBe('lv~x/1');
    const sec = (t: number) => Math.floor(t / 1000) * 1000;
    expect(data.points.map((p: LivePoint) => p.ts)).toEqual([sec(hub.clock.t - 1000), sec(hub.clock.t)]);
    hub.app.tick(); // changes from before the subscription (the snapshot already had them)
    await until(() => c.frames.some((f) => f.type === 'delta' && f.view === 'link:lv~x/1'));
    await c.drained();
    const before = c.frames.length;
    await send('down');
    hub.app.tick();
    hub.app.tick(); // a second tick without new samples sends no link/node delta
    await c.drained();
    const deltas = c.frames.slice(before).filter((f) => f.type === 'delta');
    const linkDeltas = deltas.filter((f) => f.view === 'link:lv~x/1');
    expect(linkDeltas).toHaveLength(1);
    const ld = linkDeltas[0]!.data as LinkSnapshot;
    expect(ld.link.state).toBe('down');
    expect(ld.points.map((p) => p.ts)).toEqual([sec(hub.clock.t)]);
    expect(linkDeltas[0]!.seq).toBe(3);
    expect(deltas.filter((f) => f.view === 'node:lv')).toHaveLength(1);
    // The link-down rule went pending on the first tick after the sample; the alerts view saw it.
    const alertDeltas = deltas.filter((f) => f.view === 'alerts');
    expect(alertDeltas.length).toBeGreaterThanOrEqual(1);
    const upserted = alertDeltas.flatMap((f) => (f.data as { upserted: Alert[] }).upserted);
    expect(upserted.some((a) => a.ruleId === 'link-down' && a.state === 'pending')).toBe(true);
    c.send({ type: 'ping', id: 7 });
    await until(() => c.frames.some((f) => f.type === 'pong' && f.id === 7));
    c.close();
  });
});

describe('overview tables: windows the hub computes', () => {
  /** Seven ends per host; l3 of odd hosts in `l3State`. */
  const linksOf = (n: number, l3State: 'up' | 'down') =>
    Array.from({ length: 7 }, (_, l) => ({
      id: `l${l}`,
      peer: `host-${(n + l + 1) % 6}`,
      state: l === 3 ? l3State : ('up' as const),
      records: 1000 * (n + 1),
      occupancy: 1000 * l,
    }));
  let hub: TestHub;
  const agents: TestAgent[] = [];
  beforeAll(async () => {
    hub = await startHub();
    for (let n = 0; n < 6; n++) {
      const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
      await a.hello(`host-${n}`);
      agents.push(a);
      a.send(sample(1, hub.clock.t, linksOf(n, n % 2 ? 'down' : 'up')));
      await a.acked(1);
    }
  });
  afterAll(async () => {
    for (const a of agents) a.close();
    await hub?.close();
  });

  it('a window equals the REST answer, sorted and filtered the same way; paging moves it', async () => {
    const c = await LiveClient.connect(hub);
    const rest = (await api<{ links: LinkSummary[] }>(hub, 'GET', '/api/links')).body.links;
    const byKey = (a: string, b: string) =>
      a.localeCompare(b, 'en', { numeric: true, sensitivity: 'base' }) || (a < b ? -1 : a > b ? 1 : 0);
    const matching = rest
      .filter((l) => l.key.includes('l3') || l.peer.includes('l3'))
      .sort((a, b) => byKey(a.key, b.key));
    const view = tableView({ table: 'links', sort: 'key', q: 'L3', offset: 2, limit: 3 });
    c.send({ type: 'subscribe', view });
    await until(() => c.frames.some((f) => f.type === 'snapshot' && f.view === view));
    const snap = c.frames.find((f) => f.type === 'snapshot' && f.view === view)!.data as TableSnapshot;
    expect(snap.total).toBe(matching.length);
    expect(snap.offset).toBe(2);
    expect((snap.rows as LinkSummary[]).map((r) => r.key)).toEqual(matching.slice(2, 5).map((l) => l.key));
    expect(snap.rows).toEqual(matching.slice(2, 5));

    // Most urgent first: the down ends lead.
    const urgent = tableView({ table: 'links', sort: 'urgency', q: '', offset: 0, limit: 5 });
    c.send({ type: 'subscribe', view: urgent });
    await until(() => c.frames.some((f) => f.type === 'snapshot' && f.view === urgent));
    const u = c.frames.find((f) => f.type === 'snapshot' && f.view === urgent)!.data as TableSnapshot;
    expect(u.total).toBe(42);
    expect((u.rows as LinkSummary[]).slice(0, 3).map((r) => r.state)).toEqual(['down', 'down', 'down']);

    // A change inside the window travels as that row alone.
    const before = c.frames.length;
    hub.clock.t += 1000;
    agents[1]!.send(sample(2, hub.clock.t, linksOf(1, 'up')));
    await agents[1]!.acked(2);
    hub.app.tick();
    await until(() => c.frames.slice(before).some((f) => f.type === 'delta' && f.view === urgent));
    const d = c.frames.slice(before).find((f) => f.type === 'delta' && f.view === urgent)!.data as TableDelta;
    expect(d.total).toBe(42);
    expect(d.order).toBeDefined(); // host-1~l3 left the top of the urgency order
    expect(d.order).not.toContain('host-1~l3');
    // Rows the window held travel as the fields that changed; applied as the page does, the window equals
    // a fresh snapshot of it.
    for (const p of d.patches ?? []) expect(Object.keys(p).length).toBeLessThan(10);
    let held = u;
    for (const f of c.frames.filter((x) => x.view === urgent && x.type === 'delta')) {
      held = applyTableDelta(held, f.data as TableDelta);
    }
    const c2 = await LiveClient.connect(hub);
    c2.send({ type: 'subscribe', view: urgent });
    await until(() => c2.frames.some((f) => f.type === 'snapshot' && f.view === urgent));
    const fresh = c2.frames.find((f) => f.type === 'snapshot' && f.view === urgent)!.data as TableSnapshot;
    expect(held.rows).toEqual(fresh.rows);
    expect(held.total).toBe(fresh.total);
    c2.close();
    c.close();
  });

  it('a bad window is refused with what is wrong; a page of the old protocol is told to reload', async () => {
    const c = await LiveClient.connect(hub);
    c.send({ type: 'subscribe', view: 'table:links?limit=5000' });
    await until(() => c.frames.some((f) => f.type === 'error'));
    expect(String(c.frames.find((f) => f.type === 'error')!.message)).toMatch(/limit is at most 200/);
    c.close();

    const old = await LiveClient.connect(hub, { version: null });
    old.send({ type: 'subscribe', view: 'overview' });
    await until(() => old.frames.some((f) => f.type === 'error'));
    const e = old.frames.find((f) => f.type === 'error')!;
    expect(e).toMatchObject({ code: 'ERR_RDMAQ_PROTOCOL', view: 'overview' });
    expect(String(e.message)).toMatch(/reload the page/i);
    // Nothing of the new protocol reaches it, and the hub keeps serving (a ping is answered).
    old.send({ type: 'ping', id: 3 });
    await until(() => old.frames.some((f) => f.type === 'pong'));
    expect(old.frames.some((f) => f.type === 'snapshot')).toBe(false);
    old.close();
  });
});
