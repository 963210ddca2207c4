/**
 * Two real agents (child processes) on this machine, linked both ways through rdma-core with traffic
 * generators, streaming to a WebSocket hub that validates every frame. Checks that what the hub receives,
 * what /metrics says and what the generators sent agree; that /metrics passes promtool; that /healthz
 * follows the peer's death and return; and that a misbehaving hub does not stop the links.
 */
import { spawnSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LinkSample, Sample } from '@rdmaq/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';
import { journalPath } from '../src/links.js';
import { SECRET, TestHub, TOKEN } from './helpers.js';
import {
  type AgentProc,
  freePort,
  getText,
  shmScratch,
  spawnAgent,
  startPrometheus,
  stopAgent,
} from './procs.js';

const INTERVAL_MS = 200;
const A_RATE = 400;
const A_SIZE = 100;
const B_RATE = 250;

interface Pair {
  a: AgentProc;
  b: AgentProc;
  configA: Record<string, unknown>;
  configB: Record<string, unknown>;
}

type Transport = 'shm' | 'fabric';
const PROVIDER = 'tcp;ofi_rxm';

/**
 * One agent's config. shm: links through unix sockets in `dir`. fabric: handshakes on loopback TCP ports
 * (`ports`), libfabric tcp;ofi_rxm underneath.
 */
function agentConfig(
  name: string,
  peer: string,
  dir: string,
  hub: TestHub,
  traffic: Record<string, unknown>,
  transport: Transport = 'shm',
  ports: Record<string, number> = {},
  expectIncoming = true,
): Record<string, unknown> {
  const fabric = transport === 'fabric';
  return {
    nodeId: name,
    secret: SECRET,
    hub: { url: hub.url, token: TOKEN },
    http: { host: '127.0.0.1', port: 0 },
    listen: {
      socket: join(dir, `${name}.sock`),
      shmDir: dir,
      fabric,
      ...(fabric ? { host: '127.0.0.1', port: ports[name], provider: PROVIDER } : {}),
      // Accepted up front (the rest of the path: acceptUnknown).
      expect: expectIncoming ? [{ id: `${peer}->${name}`, peer, transport }] : [],
    },
    sampling: { intervalMs: INTERVAL_MS },
    probe: { intervalMs: 200, timeoutMs: 1000 },
    reconnect: { initialMs: 50, maxMs: 500 },
    log: { level: 'info' },
    // fabric senders keep their mirror in a journal file (survives a crash of the sending agent).
    journalDir: join(dir, `journal-${name}`),
    links: [
      fabric
        ? { peer, address: `127.0.0.1:${ports[peer]}`, transport, provider: PROVIDER, traffic, journal: true }
        : { peer, address: join(dir, `${peer}.sock`), transport, traffic },
    ],
  };
}

function samplesOf(hub: TestHub, node: string): Sample[] {
  return hub.samplesOf(node);
}

function link(s: Sample, id: string): LinkSample | undefined {
  return s.links.find((l) => l.id === id);
}

/** Value of one series in Prometheus text, by metric name and label subset. */
function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

function pairSuite(transport: Transport): void {
  describe.sequential(`two agents linked both ways (${transport})`, () => {
    const scratch = shmScratch(`links-${transport}`);
    const hub = new TestHub();
    let pair: Pair;
    const AB = 'node-a->node-b';
    const BA = 'node-b->node-a';

    beforeAll(async () => {
      await hub.start();
      const ports = { 'node-a': await freePort(), 'node-b': await freePort() };
      const configA = agentConfig(
        'node-a',
        'node-b',
        scratch.dir,
        hub,
        { rate: A_RATE, size: A_SIZE },
        transport,
        ports,
      );
      const configB = agentConfig(
        'node-b',
        'node-a',
        scratch.dir,
        hub,
        { rate: B_RATE, size: { dist: 'uniform', min: 16, max: 2048 }, burst: { onMs: 300, offMs: 200 } },
        transport,
        ports,
      );
      const a = await spawnAgent('node-a', scratch.dir, configA);
      const b = await spawnAgent('node-b', scratch.dir, configB);
      pair = { a, b, configA, configB };
    }, 60_000);

    afterAll(async () => {
      await stopAgent(pair?.a);
      await stopAgent(pair?.b);
      await hub.stop();
      scratch.cleanup();
    });

    it('both links come up and the hub receives valid samples whose counters follow the traffic', async () => {
      await waitFor(
        'both agents to report traffic on both links',
        () => {
          const sa = samplesOf(hub, 'node-a').at(-1);
          const sb = samplesOf(hub, 'node-b').at(-1);
          return (
            sa &&
            sb &&
            (link(sa, AB)?.counters.records ?? 0) > 400 &&
            (link(sb, BA)?.counters.records ?? 0) > 200 &&
            (link(sb, AB)?.counters.records ?? 0) > 400
          );
        },
        40_000,
      );
      expect(hub.invalid).toEqual([]);
      for (const node of ['node-a', 'node-b']) {
        const ss = samplesOf(hub, node);
        // In order, none missing.
        expect(ss.map((s) => s.seq)).toEqual(ss.map((_, i) => i + 1));
        // Cumulative counters never go down; histogram deltas add up to the delivered records.
        for (const id of [AB, BA]) {
          let prev = 0;
          let queueSum = 0;
          let rttSum = 0;
          for (const s of ss) {
            const l = link(s, id);
            if (!l) continue;
            expect(l.counters.records).toBeGreaterThanOrEqual(prev);
            prev = l.counters.records;
            queueSum += l.latency.queue.reduce((a, [, n]) => a + n, 0);
            rttSum += l.latency.rtt.reduce((a, [, n]) => a + n, 0);
          }
          const last = link(ss.at(-1)!, id)!;
          if (last.direction === 'rx') {
            // shm: one latency per delivered record. rdma-core's fabric receiver also counts PROBE records
            // in `records` (they carry no queue latency).
            if (transport === 'shm') expect(queueSum).toBe(last.counters.records);
            else expect(queueSum).toBeLessThanOrEqual(last.counters.records);
            expect(queueSum).toBeGreaterThan(last.counters.records * 0.9);
            expect(last.latency.rtt.length).toBe(0);
          } else {
            expect(rttSum).toBeGreaterThan(0); // probes every 200 ms
            expect(last.counters.records).toBeGreaterThan(0);
          }
          expect(last.transport).toBe(transport);
          expect(last.provider).toBe(transport === 'shm' ? 'shm' : PROVIDER);
          expect(last.state).toBe('up');
        }
      }
      if (transport === 'fabric') {
        // The journal of node-a's link is where journalDir says, sized for the ring.
        const file = journalPath(join(scratch.dir, 'journal-node-a'), AB);
        expect(statSync(file).size).toBeGreaterThanOrEqual(4 * 1024 * 1024);
      }
      // Fixed-size traffic: bytes are exactly records × size, on both ends.
      const sa = samplesOf(hub, 'node-a').at(-1)!;
      const ab = link(sa, AB)!;
      // (rdma-core's fabric transport also counts its PROBE records in `records`: there, records ≥ data.)
      if (transport === 'shm') expect(ab.counters.bytes).toBe(ab.counters.records * A_SIZE);
      else {
        expect(ab.counters.bytes % A_SIZE).toBe(0);
        expect(ab.counters.bytes / A_SIZE).toBeLessThanOrEqual(ab.counters.records);
        expect(ab.counters.bytes / A_SIZE).toBeGreaterThan(ab.counters.records * 0.9);
      }
      expect(ab.peer).toBe('node-b');
      const rxAb = link(samplesOf(hub, 'node-b').at(-1)!, AB)!;
      expect(rxAb.peer).toBe('node-a');
      if (transport === 'shm') expect(rxAb.counters.bytes).toBe(rxAb.counters.records * A_SIZE);
      else {
        // rdma-core's fabric receiver counts PROBE records in `records` too.
        expect(rxAb.counters.bytes % A_SIZE).toBe(0);
        expect(rxAb.counters.bytes / A_SIZE).toBeLessThanOrEqual(rxAb.counters.records);
        expect(rxAb.counters.bytes / A_SIZE).toBeGreaterThan(rxAb.counters.records * 0.9);
      }
      // The generator never sends faster than its rate: records ≤ rate × time since the first sample + 1 s.
      const first = samplesOf(hub, 'node-a')[0]!;
      const elapsedS = (sa.ts - first.ts) / 1000 + 1;
      expect(ab.counters.records).toBeLessThanOrEqual(A_RATE * elapsedS + 1);
      // Uniform sizes 16..2048 on B→A: the mean is inside the range.
      const ba = link(samplesOf(hub, 'node-b').at(-1)!, BA)!;
      const mean = ba.counters.bytes / ba.counters.records;
      expect(mean).toBeGreaterThan(16);
      expect(mean).toBeLessThan(2048);
    }, 60_000);

    it('/metrics passes promtool and its counters match the sample it was built from', async () => {
      const { status, text } = await getText(pair.b.url('/metrics'));
      expect(status).toBe(200);
      const file = join(scratch.dir, 'metrics.txt');
      writeFileSync(file, text);
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(check.stderr + check.stdout).toBe('');
      expect(check.status).toBe(0);
      const seq = metricValue(text, 'rdmaq_agent_samples_total', {})!;
      expect(seq).toBeGreaterThan(0);
      const sample = await waitFor(`sample ${seq} of node-b at the hub`, () =>
        samplesOf(hub, 'node-b').find((s) => s.seq === seq),
      );
      for (const l of sample.links) {
        const labels = { link: l.id, peer: l.peer, transport: l.transport, provider: l.provider };
        expect(metricValue(text, 'rdmaq_link_records_total', labels)).toBe(l.counters.records);
        expect(metricValue(text, 'rdmaq_link_bytes_total', labels)).toBe(l.counters.bytes);
        expect(metricValue(text, 'rdmaq_link_ring_capacity_bytes', labels)).toBe(l.gauges.capacityBytes);
        expect(metricValue(text, 'rdmaq_link_up', labels)).toBe(l.state === 'up' ? 1 : 0);
        // Histogram counts: the sum of every delta the hub received up to this sample.
        const all = samplesOf(hub, 'node-b').filter((s) => s.seq <= seq);
        const queueTotal = all.reduce(
          (a, s) => a + (link(s, l.id)?.latency.queue.reduce((x, [, n]) => x + n, 0) ?? 0),
          0,
        );
        expect(metricValue(text, 'rdmaq_link_queue_latency_seconds_count', labels)).toBe(queueTotal);
        expect(metricValue(text, 'rdmaq_link_queue_latency_seconds_bucket', { ...labels, le: '+Inf' })).toBe(
          queueTotal,
        );
      }
      expect(text).toMatch(/# TYPE rdmaq_link_queue_latency_seconds histogram/);
      expect(text).toMatch(/# TYPE rdmaq_link_records_total counter/);
    }, 30_000);

    it('a hub sending bad frames is retried while the links keep running', async () => {
      hub.mode = { kind: 'bad-frame', frame: '{"type":"welcome","v":1}' };
      const before = metricValue((await getText(pair.a.url('/metrics'))).text, 'rdmaq_link_records_total', {
        link: AB,
      })!;
      // Kick the agents off their good connections: the next ones get a bad frame after welcome.
      const connectionsBefore = hub.connections.length;
      await hub.stop();
      await hub.start(hub.port);
      await waitFor('bad-frame complaints from node-a', () =>
        pair.a.lines.some((l) => typeof l.msg === 'string' && l.msg.includes('bad frame from the hub')),
      );
      await waitFor('several retries', () => hub.connections.length >= connectionsBefore + 4, 30_000);
      // The links keep running while the hub misbehaves: the records counter keeps growing.
      await waitFor('records to grow during the bad-hub phase', async () => {
        const now = metricValue((await getText(pair.a.url('/metrics'))).text, 'rdmaq_link_records_total', {
          link: AB,
        })!;
        return now > before + A_RATE / 2;
      });
      expect(hub.mode.kind).toBe('bad-frame');
      expect((await getText(pair.a.url('/healthz'))).status).toBe(200);
      hub.mode = { kind: 'normal' };
      await waitFor('node-a live again', () =>
        pair.a.lines.some((l) => l.msg === 'hub welcomed us' && (l.replay as number) > 0),
      );
    }, 60_000);

    // Transport-independent: run once (shm).
    if (transport === 'shm')
      it('a real Prometheus scrapes both agents and PromQL gives the link throughput that was sent', async () => {
        // Scrapes every 250 ms, so a rate window of a few seconds holds enough of them.
        const SCRAPE_MS = 250;
        const WINDOW_S = 4;
        const prom = await startPrometheus(scratch.dir, [pair.a.httpPort, pair.b.httpPort], SCRAPE_MS);
        try {
          const q = (expr: string, time?: number) => prom.query(expr, time);
          // Both ends of A→B are scraped (tx on node-a, rx on node-b) and up.
          await waitFor(
            'both ends scraped',
            async () => (await q(`rdmaq_link_up{link="${AB}"} == 1`)).length === 2,
            30_000,
          );
          // Both series have a sample from before now: a window that starts a scrape later is covered from its
          // start. Ask for the throughput over it once Prometheus holds a scrape of both ends past its end.
          const evalAt = Date.now() / 1000 + SCRAPE_MS / 1000 + WINDOW_S;
          await waitFor(
            'a scrape of both ends after the rate window',
            async () => {
              const last = await q(`timestamp(rdmaq_link_bytes_total{link="${AB}"})`);
              return last.length === 2 && last.every((r) => r.value >= evalAt);
            },
            { timeoutMs: 30_000, everyMs: SCRAPE_MS },
          );
          const rates = await q(`rate(rdmaq_link_bytes_total{link="${AB}"}[${WINDOW_S}s])`, evalAt);
          expect(rates.length).toBe(2);
          // What was sent over the same window, from the samples the hub received from node-a.
          const ss = samplesOf(hub, 'node-a').filter(
            (s) => s.ts >= (evalAt - WINDOW_S) * 1000 && s.ts <= evalAt * 1000,
          );
          const first = link(ss[0]!, AB)!;
          const last = link(ss.at(-1)!, AB)!;
          const sentRate =
            (last.counters.bytes - first.counters.bytes) / ((ss.at(-1)!.ts - ss[0]!.ts) / 1000);
          expect(sentRate).toBeGreaterThan(0);
          for (const r of rates) {
            // Same counter, two samplings (250 ms scrapes vs 200 ms samples): agree within 25 %.
            expect(r.value / sentRate).toBeGreaterThan(0.75);
            expect(r.value / sentRate).toBeLessThan(1.25);
          }
          // Histograms are real Prometheus histograms: quantiles come out in seconds.
          const p50 = await q(
            `histogram_quantile(0.5, sum by (le) (rate(rdmaq_link_probe_rtt_seconds_bucket{link="${AB}"}[${WINDOW_S}s])))`,
            evalAt,
          );
          expect(p50.length).toBe(1);
          expect(p50[0]!.value).toBeGreaterThan(0);
          expect(p50[0]!.value).toBeLessThan(1);
        } finally {
          await prom.stop();
        }
      }, 90_000);

    // fabric declares a silent peer dead after its heartbeat timeout, so "degraded" is an shm-only state here.
    if (transport === 'shm')
      it('a peer that stops consuming makes the link degraded (probes unanswered), and up again', async () => {
        const status = async () => (await getText(pair.a.url('/healthz'))).status;
        await waitFor('node-a healthy', async () => (await status()) === 200, 20_000);
        // A stopped process keeps its sockets open (not "down") but polls nothing: probes go unanswered.
        pair.b.kill('SIGSTOP');
        try {
          const body = await waitFor<string>(
            'node-a degraded',
            async () => {
              const r = await getText(pair.a.url('/healthz'));
              return r.status === 503 ? r.text : undefined;
            },
            20_000,
          );
          const h = JSON.parse(body) as { links: Array<{ id: string; state: string; reason: string }> };
          const ab = h.links.find((l) => l.id === AB)!;
          expect(ab.state).toBe('degraded');
          expect(ab.reason).toMatch(/no probe reply/);
        } finally {
          pair.b.kill('SIGCONT');
        }
        await waitFor('node-a healthy again', async () => (await status()) === 200, 20_000);
        expect(
          hub.events.some((e) => e.kind === 'link_state' && e.link === AB && e.state === 'degraded'),
        ).toBe(true);
      }, 60_000);

    it('/healthz flips to 503 when the peer is killed and back to 200 when it returns', async () => {
      const status = async () => (await getText(pair.a.url('/healthz'))).status;
      await waitFor('node-a healthy', async () => (await status()) === 200, 20_000);
      pair.b.kill('SIGKILL');
      await pair.b.exited;
      // Each end learns on its own path (the receive end from its control socket, the send end from its
      // probes or control socket a moment later): wait for the 503 that names the sending end down.
      const body = await waitFor<string>(
        'node-a unhealthy with node-a->node-b down',
        async () => {
          const r = await getText(pair.a.url('/healthz'));
          if (r.status !== 503) return undefined;
          const ends = (JSON.parse(r.text) as { links: Array<{ id: string; state: string }> }).links;
          return ends.find((l) => l.id === AB)?.state === 'down' ? r.text : undefined;
        },
        20_000,
      );
      const h = JSON.parse(body) as {
        problems: string[];
        links: Array<{ id: string; state: string; reason: string }>;
      };
      expect(h.links.find((l) => l.id === AB)!.state, body).toBe('down');
      // The growth of the peer_gone counter reached the hub as a link_error event.
      await waitFor('a peer_gone link_error event', () =>
        hub.events.find((e) => e.kind === 'link_error' && e.link === AB && e.code === 'peer_gone'),
      );
      expect(h.problems.join('\n')).toMatch(
        /node-a->node-b \(tx node-b\) is down: .*(gone|lost|refused|reach)/,
      );
      pair.b = await spawnAgent('node-b', scratch.dir, pair.configB);
      await waitFor('node-a healthy again', async () => (await status()) === 200, 30_000);
      // Stays up (no flapping) across five more probe round trips (one every 200 ms) on the restored link;
      // on failure show what both agents logged about their links.
      const probes = async () =>
        metricValue((await getText(pair.a.url('/metrics'))).text, 'rdmaq_link_probe_rtt_seconds_count', {
          link: AB,
        }) ?? 0;
      const probesBefore = await probes();
      await waitFor(
        'five more probe round trips on node-a->node-b',
        async () => (await probes()) >= probesBefore + 5,
      );
      const linkLog = [pair.a, pair.b]
        .flatMap((p) =>
          p.lines.filter((l) => /link/.test(String(l.msg))).map((l) => `${l.time} ${p.name} ${l.msg}`),
        )
        .join('\n');
      const again = JSON.parse((await getText(pair.a.url('/healthz'))).text) as {
        links: Array<{ state: string }>;
      };
      expect(
        again.links.every((l) => l.state === 'up'),
        `${JSON.stringify(again)}\n${linkLog}`,
      ).toBe(true);
    }, 90_000);
  });
}

pairSuite('shm');
pairSuite('fabric');

// A pair of its own: both ends count from the start of their runs, so the drained totals must be equal.
describe.sequential('graceful stop (shm)', () => {
  const scratch = shmScratch('drain');
  const hub = new TestHub();
  const pair: { c?: AgentProc; d?: AgentProc } = {};
  const CD = 'node-c->node-d';

  beforeAll(async () => {
    await hub.start();
    pair.d = await spawnAgent(
      'node-d',
      scratch.dir,
      agentConfig('node-d', 'node-c', scratch.dir, hub, { rate: 100, size: 10 }, 'shm', {}, false),
    );
    pair.c = await spawnAgent(
      'node-c',
      scratch.dir,
      agentConfig('node-c', 'node-d', scratch.dir, hub, { rate: A_RATE, size: A_SIZE }, 'shm', {}, false),
    );
    await waitFor(
      'traffic on c->d',
      () => {
        const last = samplesOf(hub, 'node-d').at(-1);
        return last !== undefined && (link(last, CD)?.counters.records ?? 0) > 200;
      },
      30_000,
    );
  }, 60_000);

  afterAll(async () => {
    await stopAgent(pair.c);
    await stopAgent(pair.d);
    await hub.stop();
    scratch.cleanup();
  });

  it('SIGTERM drains: the final sample of the sender equals what the receiver delivered', async () => {
    pair.c!.kill('SIGTERM');
    expect(await pair.c!.exited).toBe(0);
    const finalC = samplesOf(hub, 'node-c').at(-1)!;
    const sent = link(finalC, CD)!;
    expect(sent.state).toBe('down');
    expect(sent.reason).toMatch(/SIGTERM/);
    expect(sent.counters.records).toBeGreaterThan(0);
    expect(hub.events.some((e) => e.kind === 'agent' && /stopping: received SIGTERM/.test(e.message))).toBe(
      true,
    );
    // Both ends count from the start of their runs, and node-c closed only once its ring was empty.
    const rx = await waitFor('node-d to see the sender leave', () => {
      const l = link(samplesOf(hub, 'node-d').at(-1)!, CD);
      return l && l.state === 'down' ? l : undefined;
    });
    expect(rx.counters.records).toBe(sent.counters.records);
    expect(rx.counters.bytes).toBe(sent.counters.bytes);
    expect(rx.gauges.occupancyBytes).toBe(0);
    // A sender that left on purpose does not make the receiving node unhealthy; its own outgoing link does.
    const hb = JSON.parse((await getText(pair.d!.url('/healthz'))).text) as {
      problems: string[];
      links: Array<{ id: string; required: boolean }>;
    };
    expect(hb.links.find((l) => l.id === CD)!.required).toBe(false);
    expect(hb.problems.join('\n')).toMatch(/node-d->node-c \(tx node-c\) is down/);
    expect(hb.problems.join('\n')).not.toMatch(/node-c->node-d/);
  }, 60_000);
  it('a receiver back after a graceful stop: its sender reconnects and the link is up again', async () => {
    // node-c (stopped above) received node-d->node-c; node-d's sender has been retrying since.
    const configC = agentConfig(
      'node-c',
      'node-d',
      scratch.dir,
      hub,
      { rate: A_RATE, size: A_SIZE },
      'shm',
      {},
      false,
    );
    pair.c = await spawnAgent('node-c', scratch.dir, configC);
    await waitFor(
      'node-d healthy again',
      async () => (await getText(pair.d!.url('/healthz'))).status === 200,
      30_000,
    );
    await waitFor('records on node-d->node-c after the restart', () => {
      const l = link(
        samplesOf(hub, 'node-c').at(-1) ?? ({ links: [] as LinkSample[] } as Sample),
        'node-d->node-c',
      );
      return l !== undefined && l.counters.records > 0;
    });
  }, 60_000);
});
