'use client';
import type { Me, Role } from '@rdmaq/shared';
import { useEffect, useState } from 'react';
import { ApiError, api, goToLogin } from '@/lib/api';

/** One `/api/auth/me` per page load, shared by the header and the page (cleared when it fails). */
let pending: Promise<Me> | null = null;

function fetchMe(): Promise<Me> {
  pending ??= api<Me>('/api/auth/me').catch((err: unknown) => {
    pending = null;
    throw err;
  });
  return pending;
}

/** Forgets the cached answer (after the signed-in user's own role changed, say). */
export function forgetMe(): void {
  pending = null;
}

/**
 * Who is signed in, from the hub (`GET /api/auth/me`); the page never decides roles itself — the hub
 * refuses what the role does not allow — this only decides what to show. A 401 goes to the login page.
 */
export function useMe(): { me: Me | undefined; error: string | undefined } {
  const [me, setMe] = useState<Me | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  useEffect(() => {
    let live = true;
    fetchMe()
      .then((m) => live && setMe(m))
      .catch((err: unknown) => {
        if (!live) return;
        if (err instanceof ApiError && err.status === 401) goToLogin();
        else setError((err as Error).message);
      });
    return () => {
      live = false;
    };
  }, []);
  return { me, error };
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
export const atLeast = (me: Me | undefined, need: Role): boolean => !!me && RANK[me.role] >= RANK[need];
