/**
 * The page notices a frozen hub by itself: it pings every HEARTBEAT_MS, calls what it shows stale after
 * STALE_AFTER_MS without any frame, and gives the socket up after DEAD_AFTER_MS (a SIGSTOPped hub or a
 * dead path never closes the socket). Time is driven with fake timers; the socket is a scripted fake.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEAD_AFTER_MS, HEARTBEAT_MS, LiveClient, STALE_AFTER_MS } from './live-client';

class FakeSocket {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: string[] = [];
  closed = false;
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(s: string) {
    this.sent.push(s);
  }
  close() {
    this.closed = true;
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  frame(f: unknown) {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
  pings() {
    return this.sent.filter((s) => JSON.parse(s).type === 'ping').length;
  }
}

describe('live client heartbeat', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.all = [];
  });
  afterEach(() => vi.useRealTimers());

  it('pings while open, turns stale after silence, fresh again on the next frame', () => {
    const c = new LiveClient({
      url: 'ws://hub/ws/live',
      WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
    });
    const statusChanges: boolean[] = [];
    c.onStatus(() => statusChanges.push(c.isStale()));
    const ws = FakeSocket.all[0]!;
    ws.open();
    expect(c.isStale()).toBe(false);
    vi.advanceTimersByTime(HEARTBEAT_MS * 2);
    expect(ws.pings()).toBe(2);
    ws.frame({ type: 'pong', id: 1, serverTime: Date.now() });
    vi.advanceTimersByTime(STALE_AFTER_MS - 100);
    expect(c.isStale()).toBe(false);
    // Within one heartbeat after STALE_AFTER_MS the listeners hear of it.
    vi.advanceTimersByTime(HEARTBEAT_MS + 100);
    // The clock alone made it stale, and listeners were told (the top bar re-renders).
    expect(c.isStale()).toBe(true);
    expect(statusChanges).toContain(true);
    ws.frame({ type: 'pong', id: 2, serverTime: Date.now() });
    expect(c.isStale()).toBe(false);
    expect(statusChanges.at(-1)).toBe(false);
    c.close();
  });

  it('gives up a socket silent for DEAD_AFTER_MS and opens a new one, resubscribing its views', () => {
    const c = new LiveClient({
      url: 'ws://hub/ws/live',
      WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
      minBackoffMs: 100,
    });
    const off = c.listen('overview', () => {});
    const first = FakeSocket.all[0]!;
    first.open();
    vi.advanceTimersByTime(DEAD_AFTER_MS - HEARTBEAT_MS);
    expect(FakeSocket.all).toHaveLength(1);
    vi.advanceTimersByTime(HEARTBEAT_MS * 2);
    expect(first.closed).toBe(true);
    expect(c.getStatus()).toBe('reconnecting');
    expect(c.get('overview').stale).toBe(true);
    vi.advanceTimersByTime(200);
    expect(FakeSocket.all).toHaveLength(2);
    const second = FakeSocket.all[1]!;
    second.open();
    expect(second.sent.map((s) => JSON.parse(s))).toContainEqual({ type: 'subscribe', view: 'overview' });
    expect(c.getStatus()).toBe('open');
    off();
    c.close();
  });
});
