import type { LinkSummary } from '@rdmaq/shared';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';
import { api, LiveClient, sample, startHub, TestAgent } from './helpers.js';

describe('the hub on its own timers (real clock)', () => {
  it('fans out, evaluates and flushes without being driven', async () => {
    const hub = await startHub(
      { history: { memoryS: 900, minuteRetentionDays: 7, hourRetentionDays: 90, flushIntervalMs: 200 } },
      { timers: true, realClock: true },
    );
    try {
      await api(hub, 'POST', '/api/rules', {
        id: 'down-now',
        name: 'DownNow',
        metric: 'link_down',
        comparison: '>=',
        threshold: 1,
        clear: 1,
        forS: 0,
        keepFiringForS: 0,
        severity: 'critical',
      });
      const live = await LiveClient.connect(hub);
      // A window of the link table: the hub sorts and pages it on its own tick and sends the new row whole.
      live.send({ type: 'subscribe', view: 'table:links' });
      const agent = await TestAgent.connect(hub.wsUrl, hub.agentToken);
      await agent.hello('t1');
      agent.send(sample(1, Date.now(), [{ id: 'l0', peer: 'p', state: 'down' }]));
      await agent.acked(1);
      await waitFor(
        'a delta carrying the new link',
        () =>
          live.frames.some(
            (f) =>
              f.type === 'delta' && (f.data as { rows: LinkSummary[] }).rows.some((l) => l.key === 't1~l0'),
          ),
        20_000,
      );
      await waitFor(
        'the rule firing',
        () => hub.app.alerts.firing().some((a) => a.ruleId === 'down-now'),
        20_000,
      );
      // Deltas come at most once per second per view.
      const times = live.frames.filter((f) => f.type === 'delta').map((f) => f.ts as number);
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(900);
      live.close();
      agent.close();
    } finally {
      await hub.close();
    }
  });
});
