'use client';
import { useEffect } from 'react';
import { restoreTheme } from './theme';

/** Re-applies an operator's remembered light theme on every page (dark is the default). */
export function ThemeRestore() {
  useEffect(restoreTheme, []);
  return null;
}
