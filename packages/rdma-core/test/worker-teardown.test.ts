/**
 * shm link ends left open when their thread ends (a Worker exits or is terminated, or the process exits):
 * Node finalizes the ring Buffer and the link end in no set order. The ring's mapping is shared by both, so
 * whichever goes last unmaps it; before, a link end's finalizer wrote into a ring its Buffer had unmapped
 * (SIGSEGV — found when the agent moved its data path into a Worker).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'worker-teardown.mjs');

describe('open shm link ends when their thread ends', () => {
  for (const how of ['worker-exit', 'terminate', 'process-exit']) {
    it(`${how}: the process ends normally, no crash`, () => {
      const r = spawnSync(process.execPath, [FIXTURE, how], { encoding: 'utf8', timeout: 30_000 });
      expect({ signal: r.signal, status: r.status, stderr: r.stderr.slice(-500) }).toEqual({
        signal: null,
        status: 0,
        stderr: '',
      });
    });
  }
});
