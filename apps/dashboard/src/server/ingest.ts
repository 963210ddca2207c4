/**
 * `/ws/agent`: agent ingest. Every frame is size-limited (ws maxPayload → close 1009) and validated with the
 * shared zod schemas before anything is applied; an invalid frame gets an `error` frame, a close code and a
 * log line, and touches nothing. Replayed samples (seq ≤ the stored one for the agent's run) are dropped.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { CloseCode, type HubFrame, PROTOCOL_VERSION, type Sample } from '@rdmaq/shared';
import { type WebSocket, WebSocketServer } from 'ws';
import { type AgentToken, type Auth, tokenAllows } from './auth.js';
import { decodeAgentFrame } from './decode.js';
import type { Logger } from './log.js';
import type { Fleet } from './model/fleet.js';
import { TokenBucket } from './throttle.js';

export const HUB_VERSION = '0.1.0';

/** 1234 ms → "1.2 s", 3 days → "72 h" (for messages). */
function fmtMs(ms: number): string {
  const s = Math.abs(ms) / 1000;
  if (s < 120) return `${Math.round(s * 10) / 10} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/** Close reasons are limited to 123 bytes by the WebSocket protocol. */
export function closeReason(s: string): string {
  let r = s;
  while (Buffer.byteLength(r) > 123) r = `${r.slice(0, Math.max(0, r.length - 4))}…`;
  return r;
}

interface AgentConn {
  ws: WebSocket;
  remote: string;
  /** The connection's agent token (the live object: a re-binding applies at once). */
  token: AgentToken | undefined;
  nodeId: string | undefined;
  /** Hub clock (ms) of the last frame received. */
  lastFrameAt: number;
  helloTimer: NodeJS.Timeout | undefined;
  ackSeq: number;
  /** Hub clock (ms) of the last non-fatal notice sent to this agent, and notices held back since. */
  noticeAt: number;
  noticesHeld: number;
  /** Event token bucket: tokens left and when it was last refilled (hub clock). */
  /** Events this connection may send (EVENT_BURST at once, EVENT_RATE_PER_S after). */
  events: TokenBucket;
}

/** Events an agent may send in a burst, and per second after it (each is logged and kept on the node). */
export const EVENT_BURST = 50;
export const EVENT_RATE_PER_S = 10;

/** At most one non-fatal `error` frame (a refused sample or event) per agent connection per this many ms. */
export const NOTICE_INTERVAL_MS = 10_000;

export interface IngestOptions {
  fleet: Fleet;
  auth: Auth;
  log: Logger;
  maxFrameBytes: number;
  helloTimeoutMs: number;
  maxAgents: number;
  /** Most nodes the fleet keeps: a hello for a new node id beyond it is refused. */
  maxNodes: number;
  /** Most link ends the fleet keeps: a sample that would add more is refused. */
  maxLinkEnds: number;
  /** Samples and events timestamped more than this before the hub's clock are refused. */
  maxSampleAgeMs: number;
  /** … or more than this after it. */
  maxSampleAheadMs: number;
  originAllowed: (req: IncomingMessage) => boolean;
  now: () => number;
  /**
   * Called after a sample was applied (the live hub and alerting read the fleet on their own tick; the
   * TSDB remote writer queues it). Must not block.
   */
  onSample?: (nodeId: string, sample: Sample) => void;
}

export class Ingest {
  readonly wss: WebSocketServer;
  private readonly conns = new Map<string, AgentConn>();
  private readonly all = new Set<AgentConn>();
  private readonly ackDue = new Set<AgentConn>();
  private readonly ackTimer: NodeJS.Timeout;
  /** Frames refused since start, by close code (exposed for tests and /api/nodes). */
  readonly refused = new Map<number, number>();
  /**
   * Samples and events dropped without closing the connection, by reason (sample_too_old,
   * sample_in_future, event_too_old, event_in_future, …): GET /api/ingest.
   */
  readonly rejected = new Map<string, number>();

  constructor(private readonly o: IngestOptions) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: o.maxFrameBytes, perMessageDeflate: false });
    // Acks are coalesced: at most one per agent per 50 ms, however fast samples (or replays) arrive.
    this.ackTimer = setInterval(() => this.flushAcks(), 50);
    this.ackTimer.unref();
  }

  connectedCount(): number {
    return this.conns.size;
  }

  /** What GET /api/ingest shows: connections and every refusal counted since start. */
  stats(): {
    agentsConnected: number;
    refusedFrames: Record<string, number>;
    rejected: Record<string, number>;
  } {
    return {
      agentsConnected: this.conns.size,
      refusedFrames: Object.fromEntries([...this.refused].map(([k, v]) => [String(k), v])),
      rejected: Object.fromEntries(this.rejected),
    };
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req));
  }

  /** Takes an upgraded socket (public: the frame property test drives it with a socket double). */
  accept(ws: WebSocket, req: IncomingMessage): void {
    const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    const c: AgentConn = {
      ws,
      remote,
      token: undefined,
      nodeId: undefined,
      lastFrameAt: this.o.now(),
      helloTimer: undefined,
      ackSeq: 0,
      noticeAt: Number.NEGATIVE_INFINITY,
      noticesHeld: 0,
      events: new TokenBucket(EVENT_BURST, EVENT_RATE_PER_S, this.o.now()),
    };
    if (!this.o.originAllowed(req)) {
      this.refuse(
        c,
        CloseCode.Forbidden,
        'ERR_RDMAQ_ORIGIN',
        `origin ${req.headers.origin} is not allowed on /ws/agent`,
      );
      return;
    }
    const authz = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(authz);
    const tok = m ? this.o.auth.checkAgentToken(m[1]) : undefined;
    if (!tok) {
      this.refuse(
        c,
        CloseCode.Unauthorized,
        'ERR_RDMAQ_AGENT_TOKEN',
        m
          ? 'unknown or revoked agent token; an admin creates one with POST /api/agent-tokens'
          : 'missing "Authorization: Bearer <agent token>" header',
      );
      return;
    }
    if (this.all.size >= this.o.maxAgents) {
      this.refuse(
        c,
        1013,
        'ERR_RDMAQ_BUSY',
        `hub is at its limit of ${this.o.maxAgents} agents; retry later`,
      );
      return;
    }
    c.token = tok;
    this.all.add(c);
    c.helloTimer = setTimeout(
      () =>
        this.refuse(
          c,
          CloseCode.BadFrame,
          'ERR_RDMAQ_NO_HELLO',
          `no hello within ${this.o.helloTimeoutMs} ms`,
        ),
      this.o.helloTimeoutMs,
    );
    ws.on('message', (data, isBinary) => {
      try {
        this.onMessage(c, data as Buffer, isBinary);
      } catch (err) {
        // A bug here must not take the hub down; the agent reconnects and replays.
        this.o.log.error({ err, node: c.nodeId }, 'ingest failed on a frame');
        this.refuse(c, 1011, 'ERR_RDMAQ_INTERNAL', 'hub error while applying the frame');
      }
    });
    ws.on('error', (err) => {
      this.count(
        (err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? CloseCode.TooBig : 1002,
      );
      this.o.log.warn({ node: c.nodeId, remote, err: err.message }, 'agent connection refused a frame');
    });
    ws.on('close', () => this.dropped(c));
  }

  private count(code: number): void {
    this.refused.set(code, (this.refused.get(code) ?? 0) + 1);
  }

  private send(c: AgentConn, f: HubFrame): void {
    if (c.ws.readyState === c.ws.OPEN) c.ws.send(JSON.stringify(f));
  }

  private refuse(c: AgentConn, code: number, errCode: string, reason: string): void {
    this.count(code);
    this.o.log.warn({ node: c.nodeId, remote: c.remote, code, reason }, 'agent frame refused');
    this.send(c, { type: 'error', v: PROTOCOL_VERSION, code: errCode, message: reason });
    if (c.ws.readyState === c.ws.OPEN || c.ws.readyState === c.ws.CONNECTING)
      c.ws.close(code, closeReason(reason));
    this.dropped(c);
  }

  private onMessage(c: AgentConn, data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      this.refuse(
        c,
        CloseCode.BadFrame,
        'ERR_RDMAQ_BAD_FRAME',
        'binary frames are not part of the protocol; send JSON text',
      );
      return;
    }
    const d = decodeAgentFrame(data);
    if (!d.ok) {
      this.refuse(c, d.closeCode, 'ERR_RDMAQ_BAD_FRAME', d.reason);
      return;
    }
    const f = d.frame;
    c.lastFrameAt = this.o.now();
    if (f.type === 'hello') {
      if (c.nodeId) {
        this.refuse(c, CloseCode.BadFrame, 'ERR_RDMAQ_BAD_FRAME', 'hello sent twice on one connection');
        return;
      }
      clearTimeout(c.helloTimer);
      const tok = c.token!;
      if (!tokenAllows(tok, f.nodeId)) {
        const bound = tok.nodes.length ? tok.nodes.slice(0, 8).join(', ') : 'no node';
        this.refuse(
          c,
          CloseCode.Forbidden,
          'ERR_RDMAQ_NODE_NOT_ALLOWED',
          `agent token "${tok.name}" may not speak for node ${f.nodeId}: it is bound to ${bound}; use the token made for this node, or an admin re-binds it (PATCH /api/agent-tokens/${tok.id})`,
        );
        return;
      }
      if (!this.o.fleet.nodes.has(f.nodeId) && this.o.fleet.nodes.size >= this.o.maxNodes) {
        this.refuse(
          c,
          1013,
          'ERR_RDMAQ_LIMIT',
          `the hub keeps at most ${this.o.maxNodes} nodes (ingest.maxNodes); node ${f.nodeId} is one too many`,
        );
        return;
      }
      const old = this.conns.get(f.nodeId);
      if (old) {
        // Another token may not push a live agent off its node (or write in its name): only a connection
        // that has gone quiet is taken over (an agent whose token was rotated, after a crash).
        const quietMs = Math.max(15_000, 3 * (this.o.fleet.nodes.get(f.nodeId)?.intervalMs ?? 1000));
        if (old.token?.id !== tok.id && this.o.now() - old.lastFrameAt < quietMs) {
          this.refuse(
            c,
            CloseCode.Duplicate,
            'ERR_RDMAQ_NODE_IN_USE',
            `node ${f.nodeId} is connected with another agent token (from ${old.remote}); refused while that agent is alive`,
          );
          return;
        }
        this.refuse(
          old,
          CloseCode.Duplicate,
          'ERR_RDMAQ_REPLACED',
          `node ${f.nodeId} connected again from ${c.remote}; this older connection is closed`,
        );
      }
      c.nodeId = f.nodeId;
      this.conns.set(f.nodeId, c);
      const lastSeq = this.o.fleet.hello(f, tok.id);
      c.ackSeq = lastSeq;
      this.send(c, { type: 'welcome', v: PROTOCOL_VERSION, hubVersion: HUB_VERSION, lastSeq });
      this.o.log.info({ node: f.nodeId, runId: f.runId, lastSeq, remote: c.remote }, 'agent connected');
      return;
    }
    if (!c.nodeId) {
      this.refuse(c, CloseCode.BadFrame, 'ERR_RDMAQ_BAD_FRAME', `${f.type} before hello; send hello first`);
      return;
    }
    if (f.type === 'event') {
      if (!c.events.take(this.o.now())) {
        this.reject(
          c,
          'event_rate',
          'ERR_RDMAQ_EVENT_RATE',
          `event refused: more than ${EVENT_BURST} events at once or ${EVENT_RATE_PER_S} per second`,
        );
        return;
      }
      const late = this.checkTime(f.ts);
      if (late) {
        this.reject(c, `event_${late.kind}`, 'ERR_RDMAQ_EVENT_TIME', `event refused: ${late.text}`);
        return;
      }
      this.o.fleet.event(c.nodeId, f);
      this.o.log.info(
        { node: c.nodeId, kind: f.kind, link: f.link, severity: f.severity, text: f.message },
        'agent event',
      );
      return;
    }
    const problem = this.checkSample(f);
    if (problem) {
      this.refuse(c, CloseCode.BadFrame, 'ERR_RDMAQ_BAD_FRAME', problem);
      return;
    }
    const node = this.o.fleet.nodes.get(c.nodeId);
    const linkEnds = this.o.fleet.links.size - (node?.links.size ?? 0) + f.links.length;
    const late = this.checkTime(f.ts);
    if (!late && linkEnds > this.o.maxLinkEnds && f.links.length > (node?.links.size ?? 0)) {
      if (this.o.fleet.skipSample(c.nodeId, f.seq)) {
        this.reject(
          c,
          'link_limit',
          'ERR_RDMAQ_LIMIT',
          `sample ${f.seq} refused (not stored): the hub keeps at most ${this.o.maxLinkEnds} link ends (ingest.maxLinkEnds) and this sample would make ${linkEnds}`,
        );
      }
    } else if (late) {
      // Not fatal: closing would only make the agent reconnect and replay the same sample. It is acked
      // (never replayed again, never stored) and the agent is told why.
      if (this.o.fleet.skipSample(c.nodeId, f.seq)) {
        this.reject(
          c,
          `sample_${late.kind}`,
          'ERR_RDMAQ_SAMPLE_TIME',
          `sample ${f.seq} refused (not stored): ${late.text}`,
        );
      }
    } else if (!this.o.fleet.applySample(c.nodeId, f)) {
      this.o.log.debug(
        { node: c.nodeId, seq: f.seq, lastSeq: c.ackSeq },
        'replayed sample already stored: dropped',
      );
    } else {
      this.o.onSample?.(c.nodeId, f);
    }
    const n = this.o.fleet.nodes.get(c.nodeId);
    if (n && n.lastSeq !== c.ackSeq) {
      c.ackSeq = n.lastSeq;
      this.ackDue.add(c);
    } else if (n) this.ackDue.add(c);
  }

  /** Checks zod cannot express: unique link ids, gauges that fit. Returns the problem or undefined. */
  private checkSample(s: Sample): string | undefined {
    const ids = new Set<string>();
    for (const l of s.links) {
      if (ids.has(l.id)) return `links: link id ${l.id} appears twice in sample ${s.seq}`;
      ids.add(l.id);
      if (l.gauges.occupancyBytes > l.gauges.capacityBytes && l.gauges.capacityBytes > 0) {
        return `links.${l.id}.gauges: occupancyBytes ${l.gauges.occupancyBytes} exceeds capacityBytes ${l.gauges.capacityBytes}`;
      }
    }
    return undefined;
  }

  /** A timestamp outside [now − maxSampleAge, now + maxSampleAhead]: which side and a sentence. */
  private checkTime(ts: number): { kind: 'too_old' | 'in_future'; text: string } | undefined {
    const now = this.o.now();
    const ahead = ts - now;
    if (ahead > this.o.maxSampleAheadMs) {
      return {
        kind: 'in_future',
        text: `timestamped ${fmtMs(ahead)} ahead of the hub clock (at most ${fmtMs(this.o.maxSampleAheadMs)} is accepted); synchronise the agent's clock (NTP)`,
      };
    }
    if (-ahead > this.o.maxSampleAgeMs) {
      return {
        kind: 'too_old',
        text: `timestamped ${fmtMs(-ahead)} before the hub clock (at most ${fmtMs(this.o.maxSampleAgeMs)} is accepted, ingest.maxSampleAgeS); check the agent's clock`,
      };
    }
    return undefined;
  }

  /** Counts a dropped sample or event and tells the agent (non-fatal, at most one frame per interval). */
  private reject(c: AgentConn, reason: string, errCode: string, message: string): void {
    this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
    const now = this.o.now();
    if (now - c.noticeAt < NOTICE_INTERVAL_MS && now >= c.noticeAt) {
      c.noticesHeld++;
      return;
    }
    const held = c.noticesHeld ? ` (and ${c.noticesHeld} more refused since the last notice)` : '';
    c.noticeAt = now;
    c.noticesHeld = 0;
    this.o.log.warn({ node: c.nodeId, remote: c.remote, reason }, `${message}${held}`);
    this.send(c, { type: 'error', v: PROTOCOL_VERSION, code: errCode, message: `${message}${held}` });
    if (c.nodeId) {
      this.o.fleet.event(c.nodeId, {
        type: 'event',
        v: PROTOCOL_VERSION,
        ts: now,
        kind: 'hub_error',
        severity: 'warning',
        code: errCode,
        message: `${message}${held}`,
      });
    }
  }

  private flushAcks(): void {
    for (const c of this.ackDue) this.send(c, { type: 'ack', v: PROTOCOL_VERSION, seq: c.ackSeq });
    this.ackDue.clear();
  }

  private dropped(c: AgentConn): void {
    clearTimeout(c.helloTimer);
    this.ackDue.delete(c);
    if (!this.all.delete(c)) return;
    if (c.nodeId && this.conns.get(c.nodeId) === c) {
      this.conns.delete(c.nodeId);
      this.o.fleet.disconnected(c.nodeId);
      this.o.log.info({ node: c.nodeId }, 'agent disconnected');
    }
  }

  /**
   * Closes the connection of an agent that went silent past the offline timeout (see
   * Fleet.refreshFreshness): its TCP connection may look open for minutes after its host was cut off.
   * `terminate`, not `close`: a close handshake would wait on a peer that cannot answer. The agent
   * reconnects (and replays what it buffered) once its path is back.
   */
  dropSilent(nodeId: string, silentS: number): void {
    const c = this.conns.get(nodeId);
    if (!c) return;
    this.o.log.warn(
      { node: nodeId, remote: c.remote, silentS },
      'agent silent past the offline timeout: connection closed; it reconnects when its path is back',
    );
    c.ws.terminate();
    this.dropped(c);
  }

  /** Disconnects agents that use a revoked token; returns how many. */
  revokeToken(tokenId: string): number {
    let n = 0;
    for (const c of [...this.all]) {
      if (c.token?.id === tokenId) {
        n++;
        this.refuse(c, CloseCode.Unauthorized, 'ERR_RDMAQ_AGENT_TOKEN', 'agent token revoked');
      }
    }
    return n;
  }

  /** After a token was re-bound: disconnects its agents that speak for a node it no longer covers. */
  tokenRebound(tokenId: string): number {
    let n = 0;
    for (const c of [...this.all]) {
      if (c.token?.id === tokenId && c.nodeId && !tokenAllows(c.token, c.nodeId)) {
        n++;
        this.refuse(
          c,
          CloseCode.Forbidden,
          'ERR_RDMAQ_NODE_NOT_ALLOWED',
          `agent token "${c.token.name}" was re-bound and no longer covers node ${c.nodeId}`,
        );
      }
    }
    return n;
  }

  close(): void {
    clearInterval(this.ackTimer);
    this.flushAcks();
    for (const c of [...this.all]) {
      c.ws.close(CloseCode.GoingAway, 'hub shutting down');
      this.dropped(c);
    }
    this.wss.close();
  }
}
