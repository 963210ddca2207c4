/** Test helpers: a real WebSocket hub stand-in that validates frames with the shared schemas, log capture. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  type AgentEvent,
  AgentFrameSchema,
  decodeFrame,
  type Hello,
  PROTOCOL_VERSION,
  type Sample,
} from '@rdmaq/shared';
import pino from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import type { Clock, TimerHandle } from '../src/clock.js';
import { type AgentConfig, loadConfig } from '../src/config.js';
import type { Logger } from '../src/logger.js';

export const TOKEN = 'test-token-0123456789';
export const SECRET = 'cluster-secret-0123456789';

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** A pino logger whose JSON lines are kept in memory (and parsed), for assertions on what was logged. */
export function captureLogger(level = 'debug'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `rdmaq-agent-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A config as the CLI would build it, from an object (the YAML file's content) plus overrides. */
export function configFrom(raw: Record<string, unknown>): AgentConfig {
  const { dir, cleanup } = tempDir('cfg');
  try {
    const file = join(dir, 'agent.json.yaml');
    // JSON is valid YAML.
    // Applications' statistics files are off unless a test asks (other tests' processes write them too).
    writeFileSync(file, JSON.stringify({ apps: { enabled: false }, ...raw }));
    return loadConfig({ file, env: {} });
  } finally {
    cleanup();
  }
}

export type HubMode =
  | { kind: 'normal' }
  /** Answer the upgrade with this HTTP status. */
  | { kind: 'http'; status: number }
  /** After welcome, send this raw text frame. */
  | { kind: 'bad-frame'; frame: string }
  /** Answer hello with an error frame and close with this code (e.g. 4001 for a revoked token). */
  | { kind: 'close'; code: number; reason: string };

export interface HubConnection {
  hello: Hello | undefined;
  auth: string | undefined;
  closedWith: number | undefined;
}

/**
 * Stand-in for the dashboard hub: accepts /ws/agent with a bearer token, validates every frame with the
 * shared zod schemas (a frame that fails is recorded as an error — tests assert there are none), answers
 * hello with welcome{lastSeq = highest seq stored for that runId} and acks samples.
 */
export class TestHub {
  readonly samples: Sample[] = [];
  /** Every stored sample with the node and run it came from. */
  readonly received: Array<{ nodeId: string; runId: string; sample: Sample }> = [];
  readonly events: AgentEvent[] = [];
  readonly invalid: string[] = [];
  readonly connections: HubConnection[] = [];
  readonly upgradeAttempts: number[] = [];
  mode: HubMode = { kind: 'normal' };
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  port = 0;
  private readonly lastSeq = new Map<string, number>();

  async start(port = 0): Promise<number> {
    const server = createServer((_req, res) => res.writeHead(404).end());
    const wss = new WebSocketServer({ noServer: true });
    server.on('upgrade', (req: IncomingMessage, socket, head) => {
      this.upgradeAttempts.push(Date.now());
      if (this.mode.kind === 'http') {
        socket.end(
          `HTTP/1.1 ${this.mode.status} Refused\r\ncontent-type: text/plain\r\n\r\ntoken not accepted`,
        );
        return;
      }
      if (req.url !== '/ws/agent' || req.headers.authorization !== `Bearer ${TOKEN}`) {
        socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, req));
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
    this.server = server;
    this.wss = wss;
    this.port = (server.address() as AddressInfo).port;
    return this.port;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/ws/agent`;
  }

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    const conn: HubConnection = { hello: undefined, auth: req.headers.authorization, closedWith: undefined };
    this.connections.push(conn);
    ws.on('close', (code) => {
      conn.closedWith = code;
    });
    ws.on('message', (data: Buffer) => {
      const d = decodeFrame(AgentFrameSchema, data);
      if (!d.ok) {
        this.invalid.push(d.reason);
        return;
      }
      const f = d.frame;
      if (f.type === 'hello') {
        conn.hello = f;
        if (this.mode.kind === 'close') {
          ws.send(
            JSON.stringify({
              type: 'error',
              v: PROTOCOL_VERSION,
              code: 'unauthorized',
              message: this.mode.reason,
            }),
          );
          ws.close(this.mode.code, this.mode.reason);
          return;
        }
        const lastSeq = this.lastSeq.get(f.runId) ?? 0;
        ws.send(JSON.stringify({ type: 'welcome', v: PROTOCOL_VERSION, hubVersion: 'test', lastSeq }));
        if (this.mode.kind === 'bad-frame') ws.send(this.mode.frame);
        return;
      }
      if (!conn.hello) {
        this.invalid.push(`${f.type} before hello`);
        return;
      }
      if (f.type === 'sample') {
        const runId = conn.hello.runId;
        const last = this.lastSeq.get(runId) ?? 0;
        // Like the real hub: keep only what comes after what is stored (dedup of replays).
        if (f.seq > last) {
          this.samples.push(f);
          this.received.push({ nodeId: conn.hello.nodeId, runId, sample: f });
          this.lastSeq.set(runId, f.seq);
        }
        ws.send(JSON.stringify({ type: 'ack', v: PROTOCOL_VERSION, seq: this.lastSeq.get(runId) }));
      } else {
        this.events.push(f);
      }
    });
  }

  /** Samples of the latest run of a node (a restarted agent starts a new run at seq 1). */
  samplesOf(nodeId: string): Sample[] {
    const runs = this.received.filter((r) => r.nodeId === nodeId);
    const runId = runs.at(-1)?.runId;
    return runs.filter((r) => r.runId === runId).map((r) => r.sample);
  }

  /** Stops listening and drops every connection (the hub "goes away"). */
  async stop(): Promise<void> {
    for (const c of this.wss?.clients ?? []) c.terminate();
    this.wss?.close();
    const s = this.server;
    this.server = undefined;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }
}

/**
 * A clock the test moves by hand: `advance(ms)` runs the timers that fall due, in order, each at its own
 * time. Sockets and other I/O stay real, so a test waits for their effects (a sample taken, a connection
 * up) between steps. Starts at the real now.
 */
export class ManualClock implements Clock {
  private t = Date.now();
  private order = 0;
  private readonly timers: Array<{ at: number; order: number; fn: () => void }> = [];

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { at: this.t + Math.max(0, ms), order: this.order++, fn };
    this.timers.push(timer);
    return {
      cancel: () => {
        const i = this.timers.indexOf(timer);
        if (i >= 0) this.timers.splice(i, 1);
      },
    };
  }

  /** Moves time forward by `ms`, running every timer due by then (also those the timers set). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: (typeof this.timers)[number] | undefined;
      for (const x of this.timers)
        if (x.at <= end && (!next || x.at < next.at || (x.at === next.at && x.order < next.order))) next = x;
      if (!next) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
  }
}
