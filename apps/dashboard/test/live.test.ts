import type { Alert, LinkSnapshot, LivePoint } from '@rdmaq/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveClient, sample, startHub, TestAgent, type TestHub, until } from './helpers.js';

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
    expect(c.frames[0]).toMatchObject({ type: 'welcome', v: 1, user: { name: 'admin', role: 'admin' } });
    for (const view of ['link:lv~x/1', 'node:lv', 'alerts']) c.send({ type: 'subscribe', view });
    await until(() => c.frames.filter((f) => f.type === 'snapshot').length === 3);
    const snap = c.frames.find((f) => f.type === 'snapshot' && f.view === 'link:lv~x/1')!;
    const data = snap.data as LinkSnapshot;
    expect(data.link.key).toBe('lv~x/1');
    const sec = (t: number) => Math.floor(t / 1000) * 1000;
    expect(data.points.map((p: LivePoint) => p.ts)).toEqual([sec(hub.clock.t - 1000), sec(hub.clock.t)]);
    hub.app.tick(); // changes from before the subscription (the snapshot already had them)
    await until(() => c.frames.some((f) => f.type === 'delta' && f.view === 'link:lv~x/1'));
    await new Promise((r) => setTimeout(r, 100));
    const before = c.frames.length;
    await send('down');
    hub.app.tick();
    hub.app.tick(); // a second tick without new samples sends no link/node delta
    await until(() => c.frames.length > before + 1);
    await new Promise((r) => setTimeout(r, 100));
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
