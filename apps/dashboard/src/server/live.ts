/**
 * `/ws/live`: browser fan-out (protocol in packages/shared/src/live.ts).
 *
 * Once per tick each subscribed view's delta is built and serialised ONCE into a Buffer that is written
 * unchanged to every subscriber (seq is per view, shared), so a thousand browsers cost one serialisation. A subscriber whose socket holds more than
 * `maxBufferedBytes` unsent bytes gets nothing while behind (its deltas are merged: counted, not queued);
 * once drained it receives `resync` and a fresh snapshot, which contains every change it missed.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  type Alert,
  describeZodError,
  LIVE_PROTOCOL_VERSION,
  LiveClientFrameSchema,
  LiveCloseCode,
  type LiveServerFrame,
  MAX_LIVE_CLIENT_FRAME_BYTES,
  MAX_LIVE_SUBSCRIPTIONS,
  parseLinkKey,
  viewKind,
} from '@rdmaq/shared';
import { type WebSocket, WebSocketServer } from 'ws';
import type { AlertEngine } from './alerts.js';
import type { SessionUser } from './auth.js';
import { closeReason, HUB_VERSION } from './ingest.js';
import type { Logger } from './log.js';
import type { Fleet, FleetChanges } from './model/fleet.js';
import { OverviewViews } from './overview.js';
import { TokenBucket } from './throttle.js';

const RECENT_MS = 5 * 60_000;

interface Sub {
  /** Deltas skipped while the socket was backed up. */
  merged: number;
}

interface Client {
  ws: WebSocket;
  user: SessionUser;
  subs: Map<string, Sub>;
  /** Frame token bucket (a subscribe builds a snapshot: the overview of a big fleet is megabytes). */
  /** Frames this client may send (LIVE_FRAME_BURST at once, LIVE_FRAMES_PER_S after). */
  frames: TokenBucket;
  /** Live protocol the page speaks (from `?v=` of its upgrade URL; 1 when it did not say). */
  version: number;
}

/** Browser frames in a burst and per second after it; beyond, the socket is closed with this code. */
export const LIVE_FRAME_BURST = 40;
export const LIVE_FRAMES_PER_S = 10;
export const LIVE_RATE_LIMITED = 4008;

export interface LiveOptions {
  fleet: Fleet;
  alerts: AlertEngine;
  log: Logger;
  now: () => number;
  maxBufferedBytes: number;
  maxClients: number;
  /** Live connections one user may hold at once (tabs); more are refused (1013). */
  maxClientsPerUser: number;
}

export class LiveHub {
  readonly wss: WebSocketServer;
  readonly clients = new Set<Client>();
  private lastTick: number;
  /** Per view: seq of the last frame built (all subscribers of a view share one frame and one seq). */
  private readonly viewSeq = new Map<string, number>();
  /** The overview and table views, computed once per tick for all subscribers. */
  private readonly views: OverviewViews;
  /** Frames sent / merged since start (tests and diagnostics). */
  stats = { deltas: 0, snapshots: 0, resyncs: 0, merged: 0 };

  constructor(private readonly o: LiveOptions) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_LIVE_CLIENT_FRAME_BYTES,
      perMessageDeflate: false,
    });
    this.lastTick = o.now();
    this.views = new OverviewViews(o.fleet);
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, user: SessionUser): void {
    const v = new URL(req.url ?? '/', 'http://hub').searchParams.get('v');
    const version = v !== null && /^\d{1,3}$/.test(v) ? Number(v) : 1;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.attach(ws, user, version));
  }

  /**
   * Takes an upgraded socket (public: the frame property test drives it with a socket double). `version`:
   * the live protocol the page speaks.
   */
  attach(ws: WebSocket, user: SessionUser, version = LIVE_PROTOCOL_VERSION): void {
    if (this.clients.size >= this.o.maxClients) {
      ws.close(1013, 'too many live clients; retry later');
      return;
    }
    let mine = 0;
    for (const x of this.clients) if (x.user.name === user.name) mine++;
    if (mine >= this.o.maxClientsPerUser) {
      ws.close(1013, `at most ${this.o.maxClientsPerUser} live connections per user; close some tabs`);
      return;
    }
    const c: Client = {
      ws,
      user,
      subs: new Map(),
      frames: new TokenBucket(LIVE_FRAME_BURST, LIVE_FRAMES_PER_S, this.o.now()),
      version,
    };
    this.clients.add(c);
    this.sendFrame(c, {
      type: 'welcome',
      v: LIVE_PROTOCOL_VERSION,
      user: { name: user.name, role: user.role },
      hubVersion: HUB_VERSION,
      serverTime: this.o.now(),
    });
    ws.on('message', (data, isBinary) => {
      try {
        this.onMessage(c, data as Buffer, isBinary);
      } catch (err) {
        this.o.log.error({ err }, 'live frame handling failed');
        ws.close(1011, 'hub error');
      }
    });
    ws.on('error', (err) => this.o.log.warn({ err: err.message, user: user.name }, 'live connection error'));
    ws.on('close', () => this.clients.delete(c));
  }

  private sendFrame(c: Client, f: LiveServerFrame): void {
    if (c.ws.readyState === c.ws.OPEN) c.ws.send(JSON.stringify(f));
  }

  private fail(c: Client, code: number, reason: string): void {
    this.sendFrame(c, { type: 'error', code: 'ERR_RDMAQ_BAD_FRAME', message: reason });
    c.ws.close(code, closeReason(reason));
  }

  private onMessage(c: Client, data: Buffer, isBinary: boolean): void {
    if (!c.frames.take(this.o.now())) {
      this.fail(
        c,
        LIVE_RATE_LIMITED,
        `more than ${LIVE_FRAME_BURST} frames at once or ${LIVE_FRAMES_PER_S} per second; reconnect and subscribe less often`,
      );
      return;
    }
    if (isBinary) {
      this.fail(c, LiveCloseCode.BadFrame, 'binary frames are not part of the protocol');
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data.toString('utf8'));
    } catch (err) {
      this.fail(c, LiveCloseCode.BadFrame, `frame is not JSON: ${(err as Error).message}`);
      return;
    }
    const r = LiveClientFrameSchema.safeParse(json);
    if (!r.success) {
      this.fail(c, LiveCloseCode.BadFrame, describeZodError(r.error));
      return;
    }
    const f = r.data;
    if (f.type === 'ping') {
      this.sendFrame(c, {
        type: 'pong',
        ...(f.id !== undefined ? { id: f.id } : {}),
        serverTime: this.o.now(),
      });
      return;
    }
    if (f.type === 'unsubscribe') {
      c.subs.delete(f.view);
      return;
    }
    if (!c.subs.has(f.view) && c.subs.size >= MAX_LIVE_SUBSCRIPTIONS) {
      this.fail(
        c,
        LiveCloseCode.TooManySubscriptions,
        `at most ${MAX_LIVE_SUBSCRIPTIONS} views per connection`,
      );
      return;
    }
    if (c.version !== LIVE_PROTOCOL_VERSION) {
      // A page loaded before the hub was upgraded: its views would be drawn from frames it cannot read.
      // Said per view, so even a protocol-1 page shows it where the view would be.
      this.sendFrame(c, {
        type: 'error',
        code: 'ERR_RDMAQ_PROTOCOL',
        message: `This page is out of date: it speaks live protocol ${c.version}, the hub speaks ${LIVE_PROTOCOL_VERSION}. Reload the page.`,
        view: f.view,
      });
      return;
    }
    if (!this.viewExists(f.view)) {
      this.sendFrame(c, {
        type: 'error',
        code: 'ERR_RDMAQ_NO_VIEW',
        message: `no such view: ${f.view}`,
        view: f.view,
      });
      return;
    }
    c.subs.set(f.view, { merged: 0 });
    this.sendSnapshot(c, f.view, new Map());
  }

  private viewExists(view: string): boolean {
    const k = viewKind(view);
    if (k === 'node') return this.o.fleet.nodes.has(view.slice(5));
    if (k === 'link') return this.o.fleet.links.has(view.slice(5));
    return true; // overview, alerts, and table windows (their parameters were checked by ViewSchema)
  }

  // ───────────────────────────── payloads ─────────────────────────────

  private alertsFor(pred: (a: Alert) => boolean): Alert[] {
    return this.o.alerts.activeAlerts().filter(pred);
  }

  private snapshotData(view: string): { kind: string; data: unknown } | undefined {
    const f = this.o.fleet;
    const now = this.o.now();
    const k = viewKind(view);
    if (k === 'overview') {
      const counts = this.o.alerts.counts();
      return {
        kind: k,
        data: this.views.overviewSnapshot(f.kpi(counts.firing, counts.pending), this.o.alerts.firing()),
      };
    }
    if (k === 'table') {
      const t = this.views.tableSnapshot(view);
      return t ? { kind: k, data: t } : undefined;
    }
    if (k === 'alerts') {
      return {
        kind: k,
        data: { active: this.o.alerts.activeAlerts(), recent: this.o.alerts.recentResolved() },
      };
    }
    if (k === 'node') {
      const n = f.nodes.get(view.slice(5));
      if (!n) return undefined;
      return {
        kind: k,
        data: {
          node: f.nodeSummary(n),
          links: [...n.links.values()].map((l) => f.linkSummary(l)),
          points: f.recentHostPoints(n, now - RECENT_MS, now),
          alerts: this.alertsFor((a) => a.labels.node === n.id),
        },
      };
    }
    const l = f.links.get(view.slice(5));
    if (!l) return undefined;
    return {
      kind: k,
      data: {
        link: f.linkSummary(l),
        counters: l.counters,
        points: f.recentLinkPoints(l, now - RECENT_MS, now),
        alerts: this.alertsFor((a) => a.labels.link_key === l.key),
      },
    };
  }

  /** Current seq of a view (shared by all its subscribers); a view seen for the first time starts at 1. */
  private seqOf(view: string): number {
    let n = this.viewSeq.get(view);
    if (n === undefined) {
      n = 1;
      this.viewSeq.set(view, n);
    }
    return n;
  }

  /** One serialised frame, as a Buffer written unchanged to every subscriber (sent as a text frame). */
  private frame(type: 'snapshot' | 'delta', view: string, kind: string, seq: number, data: unknown): Buffer {
    return Buffer.from(
      `{"type":"${type}","kind":"${kind}","view":${JSON.stringify(view)},"seq":${seq},"ts":${this.o.now()},"data":${JSON.stringify(data)}}`,
    );
  }

  private sendSnapshot(c: Client, view: string, cache: Map<string, Buffer | null>): void {
    let buf = cache.get(view);
    if (buf === undefined) {
      const s = this.snapshotData(view);
      buf = s ? this.frame('snapshot', view, s.kind, this.seqOf(view), s.data) : null;
      cache.set(view, buf);
    }
    if (!buf) {
      c.subs.delete(view);
      this.sendFrame(c, { type: 'error', code: 'ERR_RDMAQ_NO_VIEW', message: `view ${view} is gone`, view });
      return;
    }
    this.stats.snapshots++;
    c.ws.send(buf, { binary: false });
  }

  private deltaData(
    view: string,
    since: number,
    now: number,
    alertsDelta: unknown,
    changes: FleetChanges,
  ): { kind: string; data: unknown; snapshot?: boolean } | null {
    const f = this.o.fleet;
    const k = viewKind(view);
    if (k === 'overview') {
      const counts = this.o.alerts.counts();
      const fr = this.views.overviewFrame(f.kpi(counts.firing, counts.pending), this.o.alerts.firing());
      return { kind: k, data: fr.data, snapshot: fr.snapshot };
    }
    if (k === 'table') {
      const d = this.views.tableDelta(view);
      return d ? { kind: k, data: d } : null;
    }
    if (k === 'alerts') return alertsDelta ? { kind: k, data: alertsDelta } : null;
    if (k === 'node') {
      const n = f.nodes.get(view.slice(5));
      if (!n || !changes.nodes.has(n.id)) return null;
      const links = [...n.links.values()]
        .filter((l) => changes.links.has(l.key))
        .map((l) => f.linkSummary(l));
      const removedLinks = [...changes.removedLinks].filter((key) => parseLinkKey(key)?.nodeId === n.id);
      return {
        kind: k,
        data: {
          node: f.nodeSummary(n),
          links,
          removedLinks,
          points: f.recentHostPoints(n, since, now),
          alerts: this.alertsFor((a) => a.labels.node === n.id),
        },
      };
    }
    const l = f.links.get(view.slice(5));
    if (!l || !changes.links.has(l.key)) return null;
    return {
      kind: k,
      data: {
        link: f.linkSummary(l),
        counters: l.counters,
        points: f.recentLinkPoints(l, since, now),
        alerts: this.alertsFor((a) => a.labels.link_key === l.key),
      },
    };
  }

  /**
   * One fan-out round: at most one frame per view per client. Every view's delta is built (and its seq
   * advanced) before anything is sent, so a snapshot sent in this round carries the seq the next delta
   * continues from.
   */
  tick(): void {
    const now = this.o.now();
    const since = this.lastTick;
    this.lastTick = now;
    const ch = this.o.alerts.takeChanges();
    const fleetChanges = this.o.fleet.takeChanges();
    const alertsDelta =
      ch.upserted.length || ch.removed.length || ch.resolved.length
        ? { upserted: ch.upserted, removed: ch.removed, resolved: ch.resolved }
        : null;
    const deltas = new Map<string, Buffer | null>();
    this.views.beginTick();
    for (const c of this.clients) {
      for (const view of c.subs.keys()) {
        if (deltas.has(view)) continue;
        const d = this.deltaData(view, since, now, alertsDelta, fleetChanges);
        if (!d) {
          deltas.set(view, null);
          continue;
        }
        const seq = this.seqOf(view) + 1;
        this.viewSeq.set(view, seq);
        // A renumbered overview layout goes to every subscriber as a snapshot (same seq rules).
        deltas.set(view, this.frame(d.snapshot ? 'snapshot' : 'delta', view, d.kind, seq, d.data));
      }
    }
    const snaps = new Map<string, Buffer | null>();
    for (const c of this.clients) {
      if (c.ws.readyState !== c.ws.OPEN) continue;
      for (const [view, sub] of c.subs) {
        const buf = deltas.get(view);
        // A backed-up socket gets nothing now; what it misses is merged into the snapshot it gets later.
        if (c.ws.bufferedAmount > this.o.maxBufferedBytes) {
          if (buf) {
            sub.merged++;
            this.stats.merged++;
          }
          continue;
        }
        if (sub.merged > 0) {
          this.sendFrame(c, {
            type: 'resync',
            view,
            reason: `slow consumer: ${sub.merged} update(s) merged while the socket was backed up`,
          });
          this.stats.resyncs++;
          sub.merged = 0;
          this.sendSnapshot(c, view, snaps);
          continue;
        }
        if (!buf) continue;
        this.stats.deltas++;
        c.ws.send(buf, { binary: false });
      }
    }
    this.views.retain(new Set(deltas.keys()));
    // Views nobody watches any more forget their seq.
    if (this.viewSeq.size > deltas.size * 2 + 64) {
      for (const v of this.viewSeq.keys()) if (!deltas.has(v)) this.viewSeq.delete(v);
    }
  }

  close(): void {
    for (const c of this.clients) c.ws.close(1001, 'hub shutting down');
    this.clients.clear();
    this.wss.close();
  }
}
