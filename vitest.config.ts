import { defineConfig } from 'vitest/config';

// One root config: `pnpm vitest` here runs every package's project; turbo runs them one package at a time.
export default defineConfig({
  test: { projects: ['packages/*', 'apps/*', 'examples/*', 'test'] },
});
