import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: '@rdmaq/dashboard',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Generous: the machine is shared and noisy; no test asserts on speed.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
