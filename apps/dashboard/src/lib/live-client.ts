/**
 * The page's one WebSocket to `/ws/live`. Views are reference-counted: the first listener of a view
 * subscribes, the last one leaving unsubscribes. Frames are checked for continuity (`seq`): a gap or a
 * `resync` drops nothing visible but asks the hub for a fresh snapshot. On a dropped socket it reconnects
 * with capped exponential backoff and subscribes every view again (each answered by a snapshot).
 */
import { Backoff, LIVE_PROTOCOL_VERSION, type LiveServerFrame, type Role } from '@rdmaq/shared';
import {
  type AlertsState,
  alertsFromSnapshot,
  applyAlertsDelta,
  applyLinkDelta,
  applyNodeDelta,
  applyOverviewDelta,
  applyTableDelta,
  type LinkState,
  linkFromSnapshot,
  type NodeState,
  nodeFromSnapshot,
  type OverviewState,
  overviewFromSnapshot,
  type TableState,
  tableFromSnapshot,
} from './views';

export type ConnectionStatus = 'connecting' | 'open' | 'reconnecting' | 'unauthorized';

export interface ViewStates {
  overview: OverviewState;
  alerts: AlertsState;
  node: NodeState;
  link: LinkState;
  table: TableState;
}

export interface ViewEntry<S> {
  /** Latest state, undefined until the first snapshot. */
  state: S | undefined;
  /** True between a resync/gap/reconnect and the next snapshot: the state shown is older than it looks. */
  stale: boolean;
  /** `ERR_RDMAQ_NO_VIEW` and friends: the hub refused this view. */
  error?: { code: string; message: string };
}

interface Sub {
  listeners: Set<() => void>;
  seq: number;
  entry: ViewEntry<unknown>;
}

export interface LiveClientOptions {
  url: string;
  /** Called when the hub refuses the session (close 4001 or a 401 at the upgrade). */
  onUnauthorized?: () => void;
  /** WebSocket constructor (tests pass `ws`). */
  WebSocketImpl?: typeof WebSocket;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** How often a view the hub does not know is asked for again while a page shows it. */
const RETRY_VIEW_MS = 5_000;
/**
 * Heartbeat: the page pings the hub this often (the hub allows 10 frames/s) while the socket is open, so a quiet cluster still yields a
 * frame (the pong) and a frozen hub — SIGSTOP, a hung event loop, a dead path whose TCP connection still
 * looks open — is noticed from silence alone, as Grafana and Netdata show "stale" by themselves.
 */
export const HEARTBEAT_MS = 1_000;
/** No frame for this long: what the page shows is stale (top bar, every view). */
export const STALE_AFTER_MS = 3_000;
/** No frame for this long: the socket is given up and a new one opened. */
export const DEAD_AFTER_MS = 20_000;

const EMPTY: ViewEntry<never> = Object.freeze({ state: undefined, stale: true }) as ViewEntry<never>;

export class LiveClient {
  private ws: WebSocket | undefined;
  private readonly subs = new Map<string, Sub>();
  private readonly statusListeners = new Set<() => void>();
  /** Reconnect delays; jittered so a hub restart is not met by every open page at the same instant. */
  private readonly backoff: Backoff;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private status: ConnectionStatus = 'connecting';
  user: { name: string; role: Role } | undefined;
  /** hub clock − browser clock (ms), from welcome / pong; charts place "now" by the hub's clock. */
  clockSkewMs = 0;
  /** Browser clock (ms) of the last frame received from the hub (any kind, pongs included); 0: none yet. */
  lastFrameAt = 0;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private pingId = 0;

  constructor(private readonly opts: LiveClientOptions) {
    const initialMs = opts.minBackoffMs ?? 500;
    this.backoff = new Backoff({ initialMs, maxMs: Math.max(initialMs, opts.maxBackoffMs ?? 10_000) });
    this.connect();
  }

  getStatus(): ConnectionStatus {
    return this.status;
  }

  /** True while the socket is open but the hub has said nothing for STALE_AFTER_MS. */
  isStale(now = Date.now()): boolean {
    return this.status === 'open' && this.lastFrameAt > 0 && now - this.lastFrameAt > STALE_AFTER_MS;
  }

  onStatus(cb: () => void): () => void {
    this.statusListeners.add(cb);
    return () => this.statusListeners.delete(cb);
  }

  /** Current entry of a view (stable identity until the next frame for it). */
  get<K extends keyof ViewStates>(view: string): ViewEntry<ViewStates[K]> {
    return (this.subs.get(view)?.entry as ViewEntry<ViewStates[K]> | undefined) ?? EMPTY;
  }

  /** Listens to a view; subscribes it on the hub while anyone listens. */
  listen(view: string, cb: () => void): () => void {
    let sub = this.subs.get(view);
    if (!sub) {
      sub = { listeners: new Set(), seq: 0, entry: { state: undefined, stale: true } };
      this.subs.set(view, sub);
      this.send({ type: 'subscribe', view });
    }
    sub.listeners.add(cb);
    return () => {
      const s = this.subs.get(view);
      if (!s) return;
      s.listeners.delete(cb);
      if (s.listeners.size === 0) {
        // Unsubscribe a moment later: React strict mode and page transitions re-listen at once.
        setTimeout(() => {
          const again = this.subs.get(view);
          if (again && again.listeners.size === 0) {
            this.subs.delete(view);
            this.send({ type: 'unsubscribe', view });
          }
        }, 250);
      }
    };
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.stopHeartbeat();
    this.ws?.close(1000);
  }

  private startHeartbeat(ws: WebSocket): void {
    this.stopHeartbeat();
    this.heartbeat = setInterval(() => {
      if (this.ws !== ws) return;
      const now = Date.now();
      if (now - this.lastFrameAt > DEAD_AFTER_MS) {
        // The hub is gone in all but name: stop waiting for a close that may take minutes.
        this.dropSocket(ws);
        return;
      }
      this.pingId = (this.pingId + 1) % 1_000_000;
      this.send({ type: 'ping', id: this.pingId });
      // Stale is judged from the clock alone: tell the listeners so the top bar can say so.
      if (this.isStale(now)) for (const cb of this.statusListeners) cb();
    }, HEARTBEAT_MS);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /** Gives up a socket without waiting for its close handshake, then reconnects. */
  private dropSocket(ws: WebSocket): void {
    if (this.ws !== ws) return;
    this.ws = undefined;
    this.stopHeartbeat();
    ws.onclose = null;
    ws.onmessage = null;
    try {
      ws.close();
    } catch {
      // already closing
    }
    for (const sub of this.subs.values()) this.mark(sub, { ...sub.entry, stale: true });
    this.scheduleReconnect();
  }

  private setStatus(s: ConnectionStatus): void {
    if (this.status === s) return;
    this.status = s;
    for (const cb of this.statusListeners) cb();
  }

  private send(
    frame: { type: 'subscribe' | 'unsubscribe'; view: string } | { type: 'ping'; id: number },
  ): void {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(frame));
  }

  private connect(): void {
    if (this.closed) return;
    const Impl = this.opts.WebSocketImpl ?? WebSocket;
    let ws: WebSocket;
    try {
      ws = new Impl(this.opts.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.backoff.reset();
      this.lastFrameAt = Date.now();
      this.startHeartbeat(ws);
      this.setStatus('open');
      for (const [view, sub] of this.subs) {
        sub.seq = 0;
        this.send({ type: 'subscribe', view });
      }
    };
    ws.onmessage = (ev: MessageEvent) => {
      let frame: LiveServerFrame;
      try {
        frame = JSON.parse(typeof ev.data === 'string' ? ev.data : String(ev.data)) as LiveServerFrame;
      } catch {
        return;
      }
      const wasStale = this.isStale();
      this.lastFrameAt = Date.now();
      if (wasStale) for (const cb of this.statusListeners) cb();
      this.onFrame(frame);
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.stopHeartbeat();
      for (const sub of this.subs.values()) this.mark(sub, { ...sub.entry, stale: true });
      if (ev.code === 4001) {
        this.setStatus('unauthorized');
        this.opts.onUnauthorized?.();
        return;
      }
      // A refused upgrade (401/403) looks like an abnormal close before open: let the page check the session.
      if (!opened) this.opts.onUnauthorized?.();
      this.scheduleReconnect();
    };
    ws.onerror = () => {
      // onclose follows and handles it.
    };
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    this.setStatus('reconnecting');
    const delay = this.backoff.next();
    this.timer = setTimeout(() => this.connect(), delay);
  }

  private mark(sub: Sub, entry: ViewEntry<unknown>): void {
    sub.entry = entry;
    for (const cb of sub.listeners) cb();
  }

  private resubscribe(view: string): void {
    this.send({ type: 'unsubscribe', view });
    this.send({ type: 'subscribe', view });
  }

  private onFrame(f: LiveServerFrame): void {
    switch (f.type) {
      case 'welcome':
        if (f.v !== LIVE_PROTOCOL_VERSION) {
          // A hub newer (or older) than this page: its frames would not decode. Say so where views show.
          this.closed = true;
          for (const sub of this.subs.values()) {
            this.mark(sub, {
              ...sub.entry,
              stale: true,
              error: {
                code: 'ERR_RDMAQ_PROTOCOL',
                message: `This page is out of date: it speaks live protocol ${LIVE_PROTOCOL_VERSION}, the hub speaks ${String(f.v)}. Reload the page.`,
              },
            });
          }
          this.ws?.close(1000);
          return;
        }
        this.user = f.user;
        this.clockSkewMs = f.serverTime - Date.now();
        for (const cb of this.statusListeners) cb();
        return;
      case 'pong':
        return;
      case 'error': {
        const view = f.view;
        const sub = view ? this.subs.get(view) : undefined;
        if (!view || !sub) return;
        this.mark(sub, { ...sub.entry, error: { code: f.code, message: f.message } });
        // A node or link the hub does not know (yet): ask again later, it may start reporting.
        if (f.code === 'ERR_RDMAQ_NO_VIEW') {
          setTimeout(() => {
            const again = this.subs.get(view);
            if (again === sub && again.entry.state === undefined) this.send({ type: 'subscribe', view });
          }, RETRY_VIEW_MS);
        }
        return;
      }
      case 'resync': {
        const sub = this.subs.get(f.view);
        if (sub) this.mark(sub, { ...sub.entry, stale: true });
        return;
      }
      case 'snapshot': {
        const sub = this.subs.get(f.view);
        if (!sub) return;
        sub.seq = f.seq;
        let state: unknown;
        try {
          if (f.kind === 'overview') state = overviewFromSnapshot(f.data);
          else if (f.kind === 'alerts') state = alertsFromSnapshot(f.data);
          else if (f.kind === 'node') state = nodeFromSnapshot(f.data);
          else if (f.kind === 'table') state = tableFromSnapshot(f.data);
          else state = linkFromSnapshot(f.data);
        } catch (err) {
          // A frame this page cannot read: show it, keep what is on screen, ask again later.
          sub.seq = 0;
          this.mark(sub, {
            ...sub.entry,
            stale: true,
            error: {
              code: 'ERR_RDMAQ_BAD_FRAME',
              message: `unreadable ${f.kind} frame: ${(err as Error).message}`,
            },
          });
          return;
        }
        this.mark(sub, { state, stale: false });
        return;
      }
      case 'delta': {
        const sub = this.subs.get(f.view);
        if (!sub) return;
        const prev = sub.entry.state;
        // seq 0: a snapshot is on its way (subscribe sent); deltas before it belong to the old subscription.
        if (sub.seq === 0) return;
        if (prev === undefined || f.seq !== sub.seq + 1) {
          // Missed a frame: this delta does not apply to what we hold. Ask for a fresh snapshot.
          sub.seq = 0;
          this.mark(sub, { ...sub.entry, stale: true });
          this.resubscribe(f.view);
          return;
        }
        let state: unknown;
        try {
          if (f.kind === 'overview') state = applyOverviewDelta(prev as OverviewState, f.data);
          else if (f.kind === 'alerts') state = applyAlertsDelta(prev as AlertsState, f.data);
          else if (f.kind === 'node') state = applyNodeDelta(prev as NodeState, f.data);
          else if (f.kind === 'table') state = applyTableDelta(prev as TableState, f.data);
          else state = applyLinkDelta(prev as LinkState, f.data);
        } catch {
          // The delta does not fit what we hold (a bug or a frame lost): start the view over.
          sub.seq = 0;
          this.mark(sub, { ...sub.entry, stale: true });
          this.resubscribe(f.view);
          return;
        }
        sub.seq = f.seq;
        this.mark(sub, { state, stale: false });
        return;
      }
    }
  }
}

export function liveUrl(loc: { protocol: string; host: string }): string {
  // The page names the protocol it speaks, so a hub upgraded under an open page answers "reload".
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/ws/live?v=${LIVE_PROTOCOL_VERSION}`;
}
