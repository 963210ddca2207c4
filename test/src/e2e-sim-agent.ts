/**
 * Simulated agents for the browser end-to-end tests: real `/ws/agent` clients speaking the shared protocol
 * (hello → welcome, then one sample per interval), so the hub ingests, aggregates and alerts exactly as it
 * does for rdmaq-agent. Figures are chosen by the test (rates, latency distribution, ring occupancy, link
 * state) so it can check that what the browser shows is what the agents reported.
 */
import {
  type AgentEvent,
  bucketOf,
  decodeFrame,
  emptyLinkCounters,
  type Hello,
  HubFrameSchema,
  type LinkSample,
  PROTOCOL_VERSION,
  type Sample,
  type SparseBuckets,
} from '@rdmaq/shared';
import WebSocket from 'ws';

export interface SimLinkSpec {
  id: string;
  peer: string;
  direction: 'tx' | 'rx';
  state?: LinkSample['state'];
  recordsPerS?: number;
  payloadBytes?: number;
  /** Latency values (ns) recorded once each per sample by rx ends, repeated to fill the record count. */
  latencyNs?: number[];
  occupancy?: number;
  capacityBytes?: number;
}

interface LinkRuntime {
  spec: Required<SimLinkSpec>;
  counters: LinkSample['counters'];
}

export class SimAgent {
  private ws: WebSocket | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private seq = 0;
  private readonly links = new Map<string, LinkRuntime>();
  private readonly runId = `run-${process.pid}-${Date.now().toString(36)}`;
  readonly hubErrors: string[] = [];

  constructor(
    private readonly url: string,
    private readonly token: string,
    readonly nodeId: string,
    links: SimLinkSpec[],
    private readonly intervalMs = 1000,
    /** Sent in the hello (agent config `labels:`), e.g. `{ rack: 'r07' }`. */
    private readonly labels?: Record<string, string>,
  ) {
    for (const l of links) {
      this.links.set(l.id, {
        spec: {
          state: 'up',
          recordsPerS: 100_000,
          payloadBytes: 256,
          latencyNs: [2_500, 3_000, 3_200, 4_000, 9_000],
          occupancy: 0.05,
          capacityBytes: 4 * 1024 * 1024,
          ...l,
        },
        counters: emptyLinkCounters(),
      });
    }
  }

  /** Connects, says hello, waits for welcome, then samples every interval. */
  async start(): Promise<void> {
    const ws = new WebSocket(this.url, { headers: { authorization: `Bearer ${this.token}` } });
    this.ws = ws;
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => reject(new Error(`sim agent ${this.nodeId}: ${err.message}`));
      ws.once('error', fail);
      ws.once('unexpected-response', (_req, res) =>
        fail(new Error(`hub refused the agent socket with HTTP ${res.statusCode}`)),
      );
      ws.once('close', (code, reason) => fail(new Error(`closed ${code} ${reason.toString()}`)));
      ws.on('message', (raw) => {
        const d = decodeFrame(HubFrameSchema, raw.toString());
        if (!d.ok) return;
        if (d.frame.type === 'welcome') {
          this.seq = d.frame.lastSeq;
          resolve();
        } else if (d.frame.type === 'error') this.hubErrors.push(`${d.frame.code}: ${d.frame.message}`);
      });
      ws.once('open', () => {
        const hello: Hello = {
          type: 'hello',
          v: PROTOCOL_VERSION,
          nodeId: this.nodeId,
          runId: this.runId,
          hostname: `${this.nodeId}.e2e.test`,
          version: '0.1.0-e2e',
          providers: ['shm', 'tcp'],
          startedAt: Date.now(),
          intervalMs: this.intervalMs,
          ...(this.labels ? { labels: this.labels } : {}),
        };
        ws.send(JSON.stringify(hello));
      });
    });
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  /** Changes a link's figures from the next sample on. */
  set(linkId: string, patch: Partial<SimLinkSpec>): void {
    const l = this.links.get(linkId);
    if (!l) throw new Error(`sim agent ${this.nodeId} has no link ${linkId}`);
    Object.assign(l.spec, patch);
  }

  event(e: Omit<AgentEvent, 'type' | 'v' | 'ts'>): void {
    this.ws?.send(JSON.stringify({ type: 'event', v: PROTOCOL_VERSION, ts: Date.now(), ...e }));
  }

  private sample(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const dt = this.intervalMs / 1000;
    const links: LinkSample[] = [];
    for (const { spec, counters } of this.links.values()) {
      const up = spec.state === 'up' || spec.state === 'degraded';
      const n = up ? Math.round(spec.recordsPerS * dt) : 0;
      counters.records += n;
      counters.bytes += n * spec.payloadBytes;
      counters.completions += spec.direction === 'rx' ? Math.ceil(n / 8) : Math.ceil(n / 16);
      counters.creditUpdates += n > 0 ? 4 : 0;
      if (spec.direction === 'tx' && spec.occupancy > 0.75) counters.backpressure += 3;
      const queue: SparseBuckets = [];
      if (spec.direction === 'rx' && n > 0) {
        const per = Math.max(1, Math.floor(n / spec.latencyNs.length));
        const m = new Map<number, number>();
        for (const v of spec.latencyNs) m.set(bucketOf(v), (m.get(bucketOf(v)) ?? 0) + per);
        queue.push(...[...m.entries()].sort((a, b) => a[0] - b[0]));
      }
      const occ = Math.round(spec.occupancy * spec.capacityBytes);
      links.push({
        id: spec.id,
        peer: spec.peer,
        direction: spec.direction,
        transport: 'fabric',
        provider: 'tcp;ofi_rxm',
        state: spec.state,
        ...(spec.state === 'down' ? { reason: 'peer unreachable (simulated)' } : {}),
        counters: { ...counters, errors: { ...counters.errors } },
        gauges: { occupancyBytes: occ, peakOccupancyBytes: occ, capacityBytes: spec.capacityBytes },
        latency: { queue, rtt: n > 0 ? [[bucketOf(6_000), 10]] : [] },
      });
    }
    const sample: Sample = {
      type: 'sample',
      v: PROTOCOL_VERSION,
      seq: ++this.seq,
      ts: Date.now(),
      host: { cpuPercent: 12.5, rssBytes: 80 * 1024 * 1024, eventLoopLagMs: 0.4, uptimeS: this.seq * dt },
      links,
    };
    ws.send(JSON.stringify(sample));
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const ws = this.ws;
    this.ws = undefined;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close(1000);
      setTimeout(() => {
        ws.terminate();
        resolve();
      }, 2000).unref();
    });
  }
}
