import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: '@rdmaq/test',
    include: ['src/**/*.test.ts'],
    pool: 'forks',
    // Cross-package suites start real processes, namespaces and a browser: run files one at a time.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
