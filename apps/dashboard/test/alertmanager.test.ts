import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';
import { sample, startHub, TestAgent, type TestHub, tempDir } from './helpers.js';

const AM_BIN = '/usr/bin/prometheus-alertmanager';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe('a real Alertmanager receives the hub’s alerts (API v2)', () => {
  let am: ChildProcess | undefined;
  let amUrl = '';
  let dir = '';
  let hub: TestHub;
  let log = '';

  beforeAll(async () => {
    dir = tempDir('rdmaq-am-');
    writeFileSync(
      path.join(dir, 'alertmanager.yml'),
      'route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n',
    );
    const port = await freePort();
    amUrl = `http://127.0.0.1:${port}`;
    const proc = spawn(
      AM_BIN,
      [
        `--config.file=${path.join(dir, 'alertmanager.yml')}`,
        `--storage.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--cluster.listen-address=',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    am = proc;
    proc.stdout?.on('data', (d) => {
      log += String(d);
    });
    proc.stderr?.on('data', (d) => {
      log += String(d);
    });
    const started = await waitFor(
      'alertmanager to start',
      async () => (proc.exitCode !== null ? 'exited' : (await fetch(`${amUrl}/-/ready`)).ok && 'ready'),
      { timeoutMs: 30_000, everyMs: 100 },
    ).catch((err: Error) => err.message);
    if (started !== 'ready') throw new Error(`alertmanager did not start (${started}):\n${log}`);
    hub = await startHub({ alerts: { alertmanagerUrl: amUrl, webhookRetryBaseMs: 100 } });
  });

  afterAll(async () => {
    await hub?.close();
    if (am && am.exitCode === null) {
      const exited = new Promise((r) => am!.once('exit', r));
      am.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (am.exitCode === null) am.kill('SIGKILL');
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a firing LinkDown alert is listed by Alertmanager’s own API', async () => {
    const agent = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await agent.hello('am-node');
    let seq = 0;
    for (const dt of [0, 6]) {
      hub.clock.t += dt * 1000;
      seq++;
      agent.send(sample(seq, hub.clock.t, [{ id: 'l9', peer: 'far', state: 'down' }]));
      await agent.acked(seq);
      hub.app.tick();
    }
    expect(hub.app.alerts.firing().map((a) => a.ruleId)).toContain('link-down');
    type AmAlert = {
      labels: Record<string, string>;
      status: { state: string };
      annotations: Record<string, string>;
    };
    const listed = await waitFor(
      'Alertmanager listing the alert',
      async () => {
        const list = (await (await fetch(`${amUrl}/api/v2/alerts`)).json()) as AmAlert[];
        return list.find((a) => a.labels.alertname === 'LinkDown' && a.labels.node === 'am-node');
      },
      { timeoutMs: 30_000, everyMs: 100 },
    );
    expect(listed.labels).toMatchObject({
      link: 'l9',
      peer: 'far',
      severity: 'critical',
      rule: 'link-down',
    });
    expect(listed.status.state).toBe('active');
    expect(listed.annotations.summary).toMatch(/LinkDown/);
    // The same texts as the dashboard, and the pages to open under the hub's external URL.
    expect(listed.annotations.summary).toBe(
      'LinkDown: link l9 far → am-node (rx end on am-node, tcp;ofi_rxm, class tcp) is down',
    );
    expect(listed!.annotations).toMatchObject({
      value: 'down',
      url: `${hub.url}/links/am-node~l9`,
      link_url: `${hub.url}/links/am-node~l9`,
      node_url: `${hub.url}/nodes/am-node`,
      peer_url: `${hub.url}/nodes/far`,
    });
    expect(listed!.annotations.description).toBe(
      `CRITICAL LinkDown (firing). link l9 far → am-node (rx end on am-node, tcp;ofi_rxm, class tcp) is down. Open the link page: ${hub.url}/links/am-node~l9; node page: ${hub.url}/nodes/am-node; peer page: ${hub.url}/nodes/far.`,
    );
    agent.close();
  });
});
