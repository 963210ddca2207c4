import type { Alert, Silence } from '@rdmaq/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { api, sample, startHub, TestAgent, type TestHub, tempDir } from './helpers.js';

/** An agent-chosen link id that makes a backtracking `(a+)+…` pattern take ~36 s in RegExp (doubling per a). */
const EVIL_LINK = `${'a'.repeat(30)}b`;

const hubs: TestHub[] = [];
afterEach(async () => {
  for (const h of hubs.splice(0)) await h.close();
});

/** One agent, two down links (one with the hostile id): LinkDown alerts go pending at the first tick. */
async function fleetWithEvilLink(hub: TestHub): Promise<TestAgent> {
  const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
  await a.hello('n1');
  a.send(
    sample(1, hub.clock.t, [
      { id: EVIL_LINK, peer: 'p', state: 'down' },
      { id: 'aaaa', peer: 'p', state: 'down' },
    ]),
  );
  await a.acked(1);
  return a;
}

const timedTick = (hub: TestHub): number => {
  const t0 = performance.now();
  hub.app.tick();
  return performance.now() - t0;
};
const linkAlert = (hub: TestHub, link: string): Alert =>
  hub.app.alerts.activeAlerts().find((x) => x.ruleId === 'link-down' && x.labels.link === link)!;

describe('silence matchers cannot hang the hub', () => {
  it('a nested-quantifier regex against an agent-chosen label is matched in linear time', async () => {
    const hub = await startHub();
    hubs.push(hub);
    const s = await api<Silence>(hub, 'POST', '/api/silences', {
      matchers: [{ name: 'link', value: '(a+)+$', isRegex: true }],
      durationS: 600,
    });
    expect(s.status).toBe(201);
    const agent = await fleetWithEvilLink(hub);
    const ms = timedTick(hub);
    // RegExp: ~36 s (the event loop pinned); the Pike VM: well under a millisecond per label value.
    expect(ms).toBeLessThan(1000);
    expect(linkAlert(hub, EVIL_LINK).silencedBy).toEqual([]);
    expect(linkAlert(hub, 'aaaa').silencedBy).toEqual([s.body.id]);
    agent.close();
  });

  it('patterns that cannot be matched in linear time are refused at creation with a 400 naming why', async () => {
    const hub = await startHub();
    hubs.push(hub);
    const tryCreate = (value: string) =>
      api<{ error: { code: string; message: string } }>(hub, 'POST', '/api/silences', {
        matchers: [
          { name: 'alertname', value: 'LinkDown' },
          { name: 'link', value, isRegex: true },
        ],
        durationS: 60,
      });
    const cases: Array<[string, RegExp]> = [
      ['(a)\\1', /silence: matcher link: backreferences are not supported at position 3/],
      ['(?=a)a', /matcher link: lookahead is not supported/],
      ['(?<!x)a', /matcher link: lookbehind is not supported/],
      ['a{500}', /matcher link: repetition counts above 100/],
      ['(a', /matcher link: missing '\)'/],
      ['a'.repeat(300), /matchers\.1\.value/],
    ];
    for (const [value, msg] of cases) {
      const r = await tryCreate(value);
      expect(r.status, value).toBe(400);
      expect(r.body.error.code).toBe('ERR_RDMAQ_BAD_REQUEST');
      expect(r.body.error.message, value).toMatch(msg);
    }
    const list = await api<{ silences: Silence[] }>(hub, 'GET', '/api/silences');
    expect(list.body.silences).toEqual([]);
  });

  it('a stored silence invalid under the new rules is loaded, listed as invalid, and silences nothing', async () => {
    const dir = tempDir();
    const first = await startHub({}, { dir });
    const now = first.clock.t;
    // As an older hub stored it: a backreference (refused now) in a pattern that backtracks exponentially.
    first.app.store.db
      .prepare(
        'INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        'old1',
        JSON.stringify([{ name: 'link', value: '(a+)+(b)\\2c', isRegex: true, isEqual: true }]),
        now - 1000,
        now + 3_600_000,
        'admin',
        'from an older hub',
        now - 1000,
      );
    await first.close();
    const hub = await startHub({}, { dir });
    hubs.push(hub);
    const list = await api<{ silences: Silence[] }>(hub, 'GET', '/api/silences');
    const old = list.body.silences.find((x) => x.id === 'old1')!;
    expect(old.invalid).toMatch(/matcher link: backreferences are not supported.*silences nothing/);
    const agent = await fleetWithEvilLink(hub);
    expect(timedTick(hub)).toBeLessThan(1000);
    expect(linkAlert(hub, EVIL_LINK).silencedBy).toEqual([]);
    // It can still be expired like any other.
    expect((await api<Silence>(hub, 'DELETE', '/api/silences/old1')).body.status).toBe('expired');
    agent.close();
  });
});
