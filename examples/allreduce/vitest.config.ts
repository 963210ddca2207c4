import { defineProject } from 'vitest/config';

// The test runs the example as real processes (one per rank) linked over the fabric transport.
export default defineProject({
  test: {
    name: '@rdmaq/example-allreduce',
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
  },
});
