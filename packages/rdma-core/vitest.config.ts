import { defineProject } from 'vitest/config';

// The addon and the two-process tests want real processes, not worker threads.
export default defineProject({
  test: {
    name: '@rdmaq/rdma-core',
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
  },
});
