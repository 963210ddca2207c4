// Chaos control of the running demo: cut a host off, restore it, slow its path with `tc … tbf` (this
// kernel has no netem), kill its agent with SIGKILL, restart it. The demo process owns the namespaces and
// the agent processes, so the actions run here; `scripts/chaos.mjs` and the dashboard (demo mode, admins
// only) send them over a unix socket in the demo's data directory, one JSON line per request and reply.
import { spawnSync } from 'node:child_process';
import { chmodSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';

export const CHAOS_ACTIONS = ['status', 'cut', 'restore', 'slow', 'unslow', 'kill', 'restart'];
const NODE_RE = /^node-\d{1,2}$/;
const RATE_RE = /^\d{1,6}(kbit|mbit|gbit)$/;
/** A request line longer than this is refused: the socket is local, but nothing reads unbounded input. */
const MAX_LINE = 1024;

function sh(args) {
  const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(`${args.join(' ')}: ${(r.stderr || r.stdout || '').trim() || `exit ${r.status}`}`);
  return r.stdout;
}

/**
 * @param {object} o
 * @param {string} o.socketPath
 * @param {boolean} o.netns       namespaces in use (cut/restore/slow need them)
 * @param {Map<string, {ns: string, hostIf: string, nsIf: string, agent: () => import('node:child_process').ChildProcess | undefined, kill: () => void, start: () => void}>} o.nodes
 * @param {(msg: string) => void} o.log
 */
export function startChaosControl({ socketPath, netns, nodes, log }) {
  const slowed = new Map();
  const cut = new Set();

  function status() {
    return [...nodes.entries()].map(([node, n]) => {
      const a = n.agent();
      return {
        node,
        // A killed agent counts as stopped at once (its exit event comes a moment later).
        agent: a && a.exitCode === null && a.signalCode === null && !a.chaosKilled ? 'running' : 'stopped',
        path: cut.has(node) ? 'cut' : 'up',
        slowed: slowed.get(node) ?? null,
      };
    });
  }

  function run(req) {
    const { action, node, rate } = req ?? {};
    if (!CHAOS_ACTIONS.includes(action))
      throw new Error(`action must be one of ${CHAOS_ACTIONS.join(', ')} (got ${JSON.stringify(action)})`);
    if (action === 'status') return { nodes: status() };
    if (typeof node !== 'string' || !NODE_RE.test(node) || !nodes.has(node))
      throw new Error(`node must be one of ${[...nodes.keys()].join(', ')} (got ${JSON.stringify(node)})`);
    const n = nodes.get(node);
    const needNetns = () => {
      if (!netns) throw new Error(`${action} needs the namespace demo (run it as root with iproute2)`);
    };
    switch (action) {
      case 'cut':
        needNetns();
        sh(['ip', 'netns', 'exec', n.ns, 'ip', 'link', 'set', n.nsIf, 'down']);
        cut.add(node);
        break;
      case 'restore':
        needNetns();
        sh(['ip', 'netns', 'exec', n.ns, 'ip', 'link', 'set', n.nsIf, 'up']);
        cut.delete(node);
        break;
      case 'slow': {
        needNetns();
        const r = rate ?? '20mbit';
        if (typeof r !== 'string' || !RATE_RE.test(r))
          throw new Error(`rate must look like 20mbit, 500kbit or 1gbit (got ${JSON.stringify(r)})`);
        // Both directions: the bridge side shapes what reaches the host, the namespace side what leaves it.
        const tbf = ['root', 'tbf', 'rate', r, 'burst', '32kb', 'latency', '50ms'];
        sh(['tc', 'qdisc', 'replace', 'dev', n.hostIf, ...tbf]);
        sh(['ip', 'netns', 'exec', n.ns, 'tc', 'qdisc', 'replace', 'dev', n.nsIf, ...tbf]);
        slowed.set(node, r);
        break;
      }
      case 'unslow':
        needNetns();
        spawnSync('tc', ['qdisc', 'del', 'dev', n.hostIf, 'root']);
        spawnSync('ip', ['netns', 'exec', n.ns, 'tc', 'qdisc', 'del', 'dev', n.nsIf, 'root']);
        slowed.delete(node);
        break;
      case 'kill':
        n.kill();
        break;
      case 'restart': {
        const a = n.agent();
        if (a && a.exitCode === null && a.signalCode === null && !a.chaosKilled)
          throw new Error(`${node}'s agent is running; kill it first`);
        n.start();
        break;
      }
    }
    log(`chaos: ${action} ${node}${action === 'slow' ? ` ${slowed.get(node)}` : ''}`);
    return { ok: true, action, node, nodes: status() };
  }

  rmSync(socketPath, { force: true });
  const server = createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk) => {
      buf += chunk;
      if (buf.length > MAX_LINE && !buf.includes('\n')) {
        sock.end(`${JSON.stringify({ ok: false, error: `request longer than ${MAX_LINE} bytes` })}\n`);
        return;
      }
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let reply;
        try {
          reply = run(JSON.parse(line));
        } catch (err) {
          reply = { ok: false, error: err.message };
        }
        sock.write(`${JSON.stringify(reply)}\n`);
        nl = buf.indexOf('\n');
      }
    });
  });
  server.listen(socketPath, () => chmodSync(socketPath, 0o600));
  return {
    close() {
      server.close();
      rmSync(socketPath, { force: true });
      for (const node of slowed.keys()) run({ action: 'unslow', node });
    },
  };
}

/** Sends one request to a demo's chaos socket; resolves with its reply. */
export function chaosRequest(socketPath, req, timeoutMs = 10_000) {
  return import('node:net').then(
    ({ connect }) =>
      new Promise((resolve, reject) => {
        const sock = connect(socketPath);
        let buf = '';
        const timer = setTimeout(() => {
          sock.destroy();
          reject(new Error(`no answer from ${socketPath} in ${timeoutMs} ms`));
        }, timeoutMs);
        sock.setEncoding('utf8');
        sock.on('error', (err) => {
          clearTimeout(timer);
          reject(
            new Error(
              err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
                ? `no demo is running with its data in ${socketPath.replace(/\/chaos\.sock$/, '')} (start it with make demo)`
                : err.message,
            ),
          );
        });
        sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
        sock.on('data', (c) => {
          buf += c;
          const nl = buf.indexOf('\n');
          if (nl >= 0) {
            clearTimeout(timer);
            sock.end();
            resolve(JSON.parse(buf.slice(0, nl)));
          }
        });
      }),
  );
}
