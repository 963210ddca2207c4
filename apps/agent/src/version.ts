import { readFileSync } from 'node:fs';

/** The agent's version, from its package.json (works from src/ under vitest and from dist/). */
export const AGENT_VERSION: string = (() => {
  const raw = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
  const parsed = JSON.parse(raw) as { version?: unknown };
  return typeof parsed.version === 'string' ? parsed.version : '0.0.0';
})();
