/**
 * Colour scales shared by canvas drawing and CSS. Canvas cannot read CSS variables cheaply per frame, so
 * the palette lives here and globals.css mirrors the same values.
 */

export type Health = 'up' | 'degraded' | 'stalled' | 'connecting' | 'down' | 'stale' | 'offline' | 'unknown';

export const HEALTH_COLOR: Record<Health, string> = {
  up: '#3fb950',
  degraded: '#d29922',
  stalled: '#db6d28',
  connecting: '#58a6ff',
  down: '#f85149',
  // Figures frozen (the agent stopped sending a few periods ago): neither good nor bad, just not current.
  stale: '#a371f7',
  // A host that went silent past the offline timeout is an incident, not a shade of grey.
  offline: '#b62324',
  unknown: '#6e7681',
};

export const HEALTH_LABEL: Record<Health, string> = {
  up: 'up',
  degraded: 'degraded',
  stalled: 'stalled',
  connecting: 'connecting',
  down: 'down',
  stale: 'stale',
  offline: 'offline',
  unknown: 'unknown',
};

export function healthOf(state: string | null | undefined): Health {
  switch (state) {
    case 'up':
    case 'degraded':
    case 'stalled':
    case 'connecting':
    case 'down':
    case 'stale':
    case 'offline':
      return state;
    case 'online':
      return 'up';
    default:
      return 'unknown';
  }
}

/**
 * Node health as the hub summarises it: stale/offline from freshness, else the worst state of the link
 * ends blamed on the node itself (ends down because their peer went silent do not count).
 */
export function nodeHealth(h: 'ok' | 'degraded' | 'down' | 'stale' | 'offline'): Health {
  return h === 'ok' ? 'up' : h;
}

/** A link end's health as drawn: frozen figures of a stale/offline node are not believed. */
export function linkEndHealth(l: { state: string; freshness?: string }): Health {
  if (l.freshness === 'stale' || l.freshness === 'offline') return 'unknown';
  return healthOf(l.state);
}

/** Worse of two health states (down > stalled > degraded > connecting > offline > unknown > up). */
const RANK: Record<Health, number> = {
  up: 0,
  unknown: 1,
  stale: 1,
  offline: 2,
  connecting: 3,
  degraded: 4,
  stalled: 5,
  down: 6,
};
export function worseHealth(a: Health, b: Health): Health {
  return RANK[a] >= RANK[b] ? a : b;
}

/**
 * Occupancy fraction 0..1 → colour on a perceptual dark-to-hot ramp (empty rings are dim, full rings glow).
 * A fixed display scale (half full reads amber, 80 % and more red), independent of any alert rule.
 */
const OCC_STOPS: Array<[number, [number, number, number]]> = [
  [0, [45, 51, 59]],
  [0.05, [14, 68, 41]],
  [0.25, [38, 166, 65]],
  [0.5, [210, 153, 34]],
  [0.8, [248, 81, 73]],
  [1, [255, 123, 218]],
];

export function occupancyColor(fraction: number | null | undefined): string {
  if (typeof fraction !== 'number' || !Number.isFinite(fraction)) return '#30363d';
  const f = Math.min(1, Math.max(0, fraction));
  for (let i = 1; i < OCC_STOPS.length; i++) {
    const [f1, c1] = OCC_STOPS[i]!;
    if (f <= f1) {
      const [f0, c0] = OCC_STOPS[i - 1]!;
      const t = f1 === f0 ? 1 : (f - f0) / (f1 - f0);
      const mix = (k: number) => Math.round(c0[k]! + (c1[k]! - c0[k]!) * t);
      return `rgb(${mix(0)}, ${mix(1)}, ${mix(2)})`;
    }
  }
  return 'rgb(255, 123, 218)';
}

export const SEVERITY_COLOR: Record<string, string> = {
  critical: '#f85149',
  warning: '#d29922',
  info: '#58a6ff',
};

export type Theme = 'dark' | 'light';

/** Colours canvases and charts draw with (they cannot use CSS variables), per theme. */
export interface Palette {
  nodeFill: string;
  label: string;
  muted: string;
  highlight: string;
  grid: string;
  tooltipBg: string;
  tooltipBorder: string;
}

export const PALETTE: Record<Theme, Palette> = {
  dark: {
    nodeFill: '#0d1117',
    label: '#c9d1d9',
    muted: '#8b949e',
    highlight: '#f0f6fc',
    grid: '#21262d',
    tooltipBg: '#010409',
    tooltipBorder: '#30363d',
  },
  light: {
    nodeFill: '#ffffff',
    label: '#1f2328',
    muted: '#59636e',
    highlight: '#1f2328',
    grid: '#d8dee4',
    tooltipBg: '#ffffff',
    tooltipBorder: '#d0d7de',
  },
};
