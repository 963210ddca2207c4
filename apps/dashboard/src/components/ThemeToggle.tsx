'use client';
import { applyTheme, useTheme } from './theme';

export function ThemeToggle() {
  const theme = useTheme();
  const light = theme === 'light';
  return (
    <button
      type="button"
      className="btn btn-ghost"
      aria-pressed={light}
      title={light ? 'Switch to the dark theme' : 'Switch to the light theme'}
      onClick={() => applyTheme(light ? 'dark' : 'light')}
    >
      {light ? 'Dark' : 'Light'}
    </button>
  );
}
