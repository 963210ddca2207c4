import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';
import { api, hello, startHub, TestAgent, type TestHub } from './helpers.js';

describe('agent labels', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub();
  });
  afterAll(async () => {
    await hub?.close();
  });

  it('carries the labels of a hello into the node summary; a hello without labels has none', async () => {
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    a.send({ ...hello('r7-h1'), labels: { rack: 'r07', zone: 'eu-1' } });
    const b = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    expect(await b.hello('r7-h2')).toBe(0);
    await waitFor(
      'nodes r7-h1 and r7-h2',
      () => hub.app.fleet.nodes.has('r7-h1') && hub.app.fleet.nodes.has('r7-h2'),
      5000,
    );
    const { nodes } = (await api(hub, 'GET', '/api/nodes')).body as {
      nodes: Array<{ id: string; labels?: Record<string, string> }>;
    };
    expect(nodes.find((n) => n.id === 'r7-h1')?.labels).toEqual({ rack: 'r07', zone: 'eu-1' });
    expect(nodes.find((n) => n.id === 'r7-h2')).not.toHaveProperty('labels');
    a.close();
    b.close();
  });

  it('refuses a hello with too many or too long labels', async () => {
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']));
    for (const labels of [many, { rack: 'x'.repeat(129) }, { ['k'.repeat(65)]: 'v' }]) {
      const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
      a.send({ ...hello('bad-labels'), labels });
      const f = await a.waitFor((x) => x.type === 'error' || x.type === 'welcome');
      expect(f.type).toBe('error');
      a.close();
    }
    expect(hub.app.fleet.nodes.has('bad-labels')).toBe(false);
  });
});
