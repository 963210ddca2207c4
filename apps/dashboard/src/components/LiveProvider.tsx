'use client';
import type { Me, Role } from '@rdmaq/shared';
import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useState,
  useSyncExternalStore,
} from 'react';
import { ApiError, api, goToLogin } from '@/lib/api';
import {
  type ConnectionStatus,
  LiveClient,
  liveUrl,
  type ViewEntry,
  type ViewStates,
} from '@/lib/live-client';

const Ctx = createContext<LiveClient | null>(null);

/**
 * Owns the page's single `/ws/live` connection. Mounted once in the signed-in layout, so moving between
 * pages keeps the socket (views are subscribed/unsubscribed as pages mount).
 */
export function LiveProvider({ children }: { children: ReactNode }) {
  const [client, setClient] = useState<LiveClient | null>(null);
  useEffect(() => {
    const c = new LiveClient({
      url: liveUrl(window.location),
      onUnauthorized: () => {
        // The upgrade is refused without a session; confirm with REST before leaving the page.
        api<Me>('/api/auth/me').catch((err: unknown) => {
          if (err instanceof ApiError && err.status === 401) goToLogin();
        });
      },
    });
    setClient(c);
    return () => c.close();
  }, []);
  return <Ctx.Provider value={client}>{children}</Ctx.Provider>;
}

const NOOP = () => () => {};
const UNSET: ViewEntry<never> = { state: undefined, stale: true };

/** Live state of one view; re-renders only when a frame for that view arrives. */
export function useLiveView<K extends keyof ViewStates>(view: string | null): ViewEntry<ViewStates[K]> {
  const client = useContext(Ctx);
  const subscribe = useCallback(
    (cb: () => void) => (client && view ? client.listen(view, cb) : NOOP()),
    [client, view],
  );
  const get = useCallback(
    () => (client && view ? client.get<K>(view) : (UNSET as ViewEntry<ViewStates[K]>)),
    [client, view],
  );
  return useSyncExternalStore(subscribe, get, () => UNSET as ViewEntry<ViewStates[K]>);
}

export function useConnection(): {
  status: ConnectionStatus;
  user: { name: string; role: Role } | undefined;
  /** The socket is open but the hub has been silent past STALE_AFTER_MS (frozen hub, dead path). */
  stale: boolean;
  /** Browser clock (ms) of the last frame from the hub, 0 before the first. */
  lastFrameAt: () => number;
  /** hub clock − browser clock (ms). */
  clockSkewMs: () => number;
} {
  const client = useContext(Ctx);
  const subscribe = useCallback((cb: () => void) => (client ? client.onStatus(cb) : () => {}), [client]);
  const status = useSyncExternalStore(
    subscribe,
    () => client?.getStatus() ?? 'connecting',
    () => 'connecting' as const,
  );
  const user = useSyncExternalStore(
    subscribe,
    () => client?.user,
    () => undefined,
  );
  const stale = useSyncExternalStore(
    subscribe,
    () => client?.isStale() ?? false,
    () => false,
  );
  const lastFrameAt = useCallback(() => client?.lastFrameAt ?? 0, [client]);
  const clockSkewMs = useCallback(() => client?.clockSkewMs ?? 0, [client]);
  return { status, user, stale, lastFrameAt, clockSkewMs };
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
export function hasRole(user: { role: Role } | undefined, need: Role): boolean {
  return !!user && RANK[user.role] >= RANK[need];
}

/** Hub clock offset, so "now" on charts matches sample timestamps even when the browser clock is off. */
export function useClockSkew(): number {
  const client = useContext(Ctx);
  return client?.clockSkewMs ?? 0;
}
