/** The real binary and POSIX signals: SIGTERM stops gracefully (exit 0), a second signal exits at once. */
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';
import { SECRET, TOKEN } from './helpers.js';
import { type AgentProc, freePort, shmScratch, spawnAgent, stopAgent } from './procs.js';

describe('signals', () => {
  const scratch = shmScratch('signals');
  const procs: AgentProc[] = [];
  afterAll(async () => {
    for (const p of procs) await stopAgent(p);
    scratch.cleanup();
  });

  async function agent(name: string, expect: Array<Record<string, unknown>> = []): Promise<AgentProc> {
    // The hub address is closed: the final flush waits for it (up to 3 s), which leaves time for a 2nd signal.
    const deadHub = await freePort();
    const p = await spawnAgent(name, scratch.dir, {
      nodeId: name,
      secret: SECRET,
      hub: { url: `ws://127.0.0.1:${deadHub}/ws/agent`, token: TOKEN },
      http: { host: '127.0.0.1', port: 0 },
      listen: { socket: `${scratch.dir}/${name}.sock`, shmDir: scratch.dir, fabric: false, expect },
    });
    procs.push(p);
    return p;
  }

  it('SIGTERM drains and exits 0', async () => {
    const p = await agent('sig-a');
    p.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(p.lines.some((l) => l.msg === 'stopped')).toBe(true);
  }, 30_000);

  it('a second signal exits at once with 128 + signal', async () => {
    // An incoming shm link open in the data-path worker: it is closed before the exit (else: SIGSEGV).
    const p = await agent('sig-b', [{ id: 'x->sig-b', peer: 'x', transport: 'shm' }]);
    p.kill('SIGTERM');
    // The second signal must land while the drain runs: wait until the agent says it began.
    await waitFor('the drain to begin', () => p.lines.some((l) => l.msg === 'stopping: draining links'));
    p.kill('SIGINT');
    expect(await p.exited).toBe(130);
    expect(p.lines.some((l) => typeof l.msg === 'string' && l.msg.includes('second signal'))).toBe(true);
    expect(p.lines.some((l) => l.msg === 'stopped')).toBe(false);
  }, 30_000);
});
