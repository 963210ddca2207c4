'use client';
import { useSyncExternalStore } from 'react';
import { PALETTE, type Palette, type Theme } from '@/lib/colors';

/**
 * Dark by default; an operator may switch to light (kept in localStorage). The theme is the `data-theme`
 * attribute of <html>, so CSS follows it; canvases and charts read the matching palette through `usePalette`.
 */
const KEY = 'rdmaq-theme';
const EVENT = 'rdmaq-theme';

function current(): Theme {
  return document.documentElement.dataset.theme === 'light' ? 'light' : 'dark';
}

export function applyTheme(t: Theme, remember = true): void {
  document.documentElement.dataset.theme = t;
  if (remember) {
    try {
      localStorage.setItem(KEY, t);
    } catch {
      // storage disabled: the choice lasts for this page only
    }
  }
  window.dispatchEvent(new Event(EVENT));
}

/** Applies the remembered choice once the page runs (the server always renders dark). */
export function restoreTheme(): void {
  let saved: string | null = null;
  try {
    saved = localStorage.getItem(KEY);
  } catch {
    saved = null;
  }
  if (saved === 'light' || saved === 'dark') applyTheme(saved, false);
}

function subscribe(cb: () => void): () => void {
  window.addEventListener(EVENT, cb);
  return () => window.removeEventListener(EVENT, cb);
}

export function useTheme(): Theme {
  return useSyncExternalStore(subscribe, current, () => 'dark' as const);
}

export function usePalette(): Palette {
  return PALETTE[useTheme()];
}
