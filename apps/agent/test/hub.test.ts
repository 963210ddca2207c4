/**
 * The agent ⇄ hub stream against a real WebSocket server that validates every frame with the shared schemas.
 * Most cases run the agent on a clock 10× faster than real time (sockets, timers and buffers stay real);
 * the hub outages run on a clock the test moves by hand, one sample period at a time, waiting for each
 * sample to be taken, so "30 s away" is exactly 30 samples however loaded the machine is.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';
import { type Agent, buildAgent } from '../src/app.js';
import { type Clock, scaledClock } from '../src/clock.js';
import { captureLogger, configFrom, ManualClock, SECRET, TestHub, TOKEN } from './helpers.js';

const SPEED = 10;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

async function startAgent(
  hub: TestHub,
  extra: Record<string, unknown> = {},
  clock: Clock = scaledClock(SPEED),
) {
  const { logger, lines } = captureLogger();
  const config = configFrom({
    nodeId: 'hub-test',
    secret: SECRET,
    hub: { url: hub.url, token: TOKEN, ...((extra.hub as object) ?? {}) },
    http: { host: '127.0.0.1', port: 0 },
    listen: { enabled: false },
    // The scaled clock cannot cross into a data-path worker: links (none here) on the main loop.
    dataPath: 'main',
    sampling: { intervalMs: 1000 },
    reconnect: { initialMs: 250, maxMs: 4000 },
    ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== 'hub')),
  });
  const agent: Agent = await buildAgent(config, { logger, clock, defaultMetrics: false });
  cleanups.push(() => agent.stop());
  await agent.start();
  return { agent, lines };
}

function expectContiguous(seqs: number[], from = 1): void {
  expect(seqs.length).toBeGreaterThan(0);
  seqs.forEach((s, i) => {
    if (s !== from + i)
      throw new Error(`sample ${i} has seq ${s}, expected ${from + i} (all: ${seqs.join(',')})`);
  });
}

/** Drives an agent on a manual clock: `run(n)` is n sampling periods (1 s) of agent time, each sample taken. */
function periods(agent: Agent, clock: ManualClock) {
  return async (n: number) => {
    for (let i = 0; i < n; i++) {
      const before = agent.samplingCost().samples;
      clock.advance(1000);
      await waitFor(`sample ${before + 1} to be taken`, () => agent.samplingCost().samples > before);
    }
  };
}

/** Moves the manual clock while the agent waits to retry, until it is live on the hub again. */
async function reconnect(agent: Agent, clock: ManualClock): Promise<void> {
  await waitFor('the agent to be live on the hub again', () => {
    const state = agent.hub!.stats.state;
    if (state === 'waiting') clock.advance(250);
    return state === 'live';
  });
}

describe('hub stream', () => {
  it('sends hello then valid samples in sequence, and a final sample on stop', async () => {
    const hub = new TestHub();
    await hub.start();
    cleanups.push(() => hub.stop());
    const { agent } = await startAgent(hub);
    await waitFor('5 samples', () => hub.samples.length >= 5);
    const hello = hub.connections[0]!.hello!;
    expect(hello).toMatchObject({ nodeId: 'hub-test', runId: agent.runId, intervalMs: 1000 });
    expect(hello.providers).toContain('tcp;ofi_rxm');
    expect(hub.connections[0]!.auth).toBe(`Bearer ${TOKEN}`);
    const s = hub.samples[0]!;
    expect(s.host.rssBytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(s.host.uptimeS).toBeGreaterThanOrEqual(0);
    await agent.stop('test over');
    const seqs = hub.samples.map((x) => x.seq);
    expectContiguous(seqs);
    expect(hub.invalid).toEqual([]);
    // The final sample and the stop event made it before the close.
    expect(hub.events.some((e) => e.kind === 'agent' && /stopping: test over/.test(e.message))).toBe(true);
    expect(hub.connections[0]!.closedWith).toBe(1000);
  });

  it('hub away for 30 s then back: buffered samples arrive in order, none missing', async () => {
    const hub = new TestHub();
    const port = await hub.start();
    cleanups.push(() => hub.stop());
    const clock = new ManualClock();
    const { agent, lines } = await startAgent(hub, {}, clock);
    const run = periods(agent, clock);
    await waitFor('the hub to welcome the agent', () => agent.hub!.stats.state === 'live');
    await run(3);
    await waitFor('first samples', () => hub.samples.length >= 3);
    await hub.stop();
    const seqAtOutage = hub.samples.at(-1)!.seq;
    await waitFor('the agent to see the hub gone', () => agent.hub!.stats.state === 'waiting');
    // 30 s of agent time away: 30 samples, each buffered, while the retries back off.
    await run(30);
    expect(agent.hub!.stats.bufferedSamples).toBeGreaterThanOrEqual(30);
    expect(agent.hub!.stats.state).not.toBe('live');
    await hub.start(port);
    await reconnect(agent, clock);
    await run(5);
    await waitFor('the backlog', () => hub.samples.length >= seqAtOutage + 35);
    const seqs = hub.samples.map((x) => x.seq);
    expectContiguous(seqs);
    const ts = hub.samples.map((x) => x.ts);
    expect([...ts].sort((a, b) => a - b)).toEqual(ts);
    expect(hub.invalid).toEqual([]);
    expect(agent.hub!.stats.droppedSamples).toBe(0);
    // Acknowledged samples are freed: the buffer empties once the hub has them (no new ones: time stands).
    await waitFor('the buffer to drain', () => agent.hub!.stats.bufferedSamples === 0);
    // The outage was logged with the reason and retried with growing delays.
    const retries = lines.filter((l) => /hub connection lost/.test(l.msg));
    expect(retries.length).toBeGreaterThanOrEqual(3);
    const attempts = retries.map((l) => l.attempt as number);
    expect(attempts.slice(0, 3)).toEqual([1, 2, 3]);
    expect(lines.some((l) => /ECONNREFUSED/.test(l.msg))).toBe(true);
    // The second connection started from what the hub had, not from scratch.
    const replayLine = lines.filter((l) => l.msg === 'hub welcomed us').at(-1)!;
    expect(replayLine.lastSeq).toBe(seqAtOutage);
    expect(replayLine.replay).toBeGreaterThanOrEqual(30);
  });

  it('keeps at most bufferSeconds of samples and says how many were lost', async () => {
    const hub = new TestHub();
    const port = await hub.start();
    cleanups.push(() => hub.stop());
    const clock = new ManualClock();
    const { agent, lines } = await startAgent(hub, { hub: { bufferSeconds: 5 } }, clock);
    const run = periods(agent, clock);
    await waitFor('the hub to welcome the agent', () => agent.hub!.stats.state === 'live');
    await run(2);
    await waitFor('first samples', () => hub.samples.length >= 2);
    await hub.stop();
    await waitFor('the agent to see the hub gone', () => agent.hub!.stats.state === 'waiting');
    // 15 s of agent time away, three times what the buffer holds.
    await run(15);
    expect(agent.hub!.stats.bufferedSamples).toBeLessThanOrEqual(5);
    expect(agent.hub!.stats.droppedSamples).toBeGreaterThan(0);
    await hub.start(port);
    await reconnect(agent, clock);
    await waitFor('reconnect', () => lines.some((l) => /history has a hole/.test(l.msg)), 20_000);
    await waitFor('replayed samples', () => hub.samples.length >= 6);
    // After the hole, what arrives is contiguous and in order.
    const after = hub.samples.slice(2).map((x) => x.seq);
    expectContiguous(after, after[0]);
    expect(hub.invalid).toEqual([]);
  }, 60_000);

  it('a bad frame from the hub is logged with the reason and retried with backoff', async () => {
    const hub = new TestHub();
    hub.mode = { kind: 'bad-frame', frame: '{"type":"ack","v":1,"seq":"many"}' };
    await hub.start();
    cleanups.push(() => hub.stop());
    const { agent, lines } = await startAgent(hub);
    await waitFor('three connections', () => hub.connections.length >= 3, 30_000);
    const bad = lines.filter((l) => /bad frame from the hub/.test(l.msg));
    expect(bad.length).toBeGreaterThanOrEqual(2);
    expect(bad[0]!.msg).toMatch(/seq/);
    const attempts = lines.filter((l) => /hub connection lost/.test(l.msg)).map((l) => l.attempt as number);
    expect(attempts.slice(0, 2)).toEqual([1, 2]);
    const delays = lines.filter((l) => /hub connection lost/.test(l.msg)).map((l) => l.delayMs as number);
    // Delay n is drawn from [cap/2, cap] with cap = 250·2ⁿ⁻¹: the third is at least the first's maximum.
    if (delays.length >= 3) expect(delays[2]!).toBeGreaterThanOrEqual(delays[0]! / 2);
    // Not JSON at all: also logged and retried.
    hub.mode = { kind: 'bad-frame', frame: 'not json{' };
    const before = hub.connections.length;
    await waitFor('more connections', () => hub.connections.length >= before + 1, 30_000);
    await waitFor('the JSON complaint', () => lines.some((l) => /not JSON/.test(l.msg)), 10_000);
    // The agent kept sampling all along.
    expect(agent.health().status).toBe('ok');
    hub.mode = { kind: 'normal' };
  }, 60_000);

  it('a close code from the hub (4001) is logged with its reason and a hint, and retried', async () => {
    const hub = new TestHub();
    hub.mode = { kind: 'close', code: 4001, reason: 'token revoked' };
    await hub.start();
    cleanups.push(() => hub.stop());
    const { agent, lines } = await startAgent(hub);
    await waitFor(
      'two closed connections',
      () => hub.connections.filter((c) => c.closedWith === 4001).length >= 2,
      20_000,
    );
    const lost = await waitFor('the log line', () =>
      lines.find((l) => /hub connection lost \(closed with code 4001 \(token revoked\)\)/.test(l.msg)),
    );
    expect(lost.hint).toMatch(/rejected the token/);
    expect(lines.some((l) => /hub reported an error: token revoked/.test(l.msg))).toBe(true);
    hub.mode = { kind: 'normal' };
    await waitFor('samples once let in', () => hub.samples.length >= 2, 30_000);
    expect(agent.hub!.stats.state).toBe('live');
  }, 60_000);

  it('an HTTP 401 on upgrade is logged with the status and retried', async () => {
    const hub = new TestHub();
    hub.mode = { kind: 'http', status: 401 };
    await hub.start();
    cleanups.push(() => hub.stop());
    const { agent, lines } = await startAgent(hub);
    await waitFor('two refused attempts', () => hub.upgradeAttempts.length >= 2, 20_000);
    await waitFor('the log line', () =>
      lines.find((l) => /refused the connection: hub answered HTTP 401/.test(l.msg)),
    );
    const refused = lines.find((l) => /refused the connection/.test(l.msg))!;
    expect(refused.hint).toMatch(/hub\.token/);
    expect(refused.msg).toMatch(/token not accepted/);
    // Let it in: the samples taken meanwhile arrive, from seq 1.
    hub.mode = { kind: 'normal' };
    await waitFor('samples after the refusals', () => hub.samples.length >= 3, 30_000);
    expectContiguous(hub.samples.map((s) => s.seq));
    expect(agent.hub!.stats.state).toBe('live');
  }, 60_000);
});
