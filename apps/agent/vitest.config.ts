import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: '@rdmaq/agent', include: ['src/**/*.test.ts', 'test/**/*.test.ts'] },
});
