// `make demo`: the dashboard and four rdmaq agents on this machine, linked in a mesh with real rdma-core
// links and a traffic generator on every link. As root each agent runs in its own network namespace
// (a veth pair into a bridge), so fabric links cross a real network path that `ip link set … down` can cut
// and `tc qdisc … tbf` can slow; without root everything runs on 127.0.0.1.
//
//   node scripts/demo.mjs [--port 3000] [--agents 4] [--no-netns] [--no-apps] [--data .data/demo]
//
// Beside the agents, an application runs on every host (examples/allreduce, a training job's ring all-reduce,
// linked rank to rank over fabric without the agents): the agents find it through its statistics file and the
// dashboard shows its links, labelled app="allreduce", beside the agents' own (--no-apps leaves it out).
//
// Nothing here is faked: every figure on the dashboard comes from records that crossed a ring.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startChaosControl } from './demo-chaos.mjs';

const root = resolve(new URL('..', import.meta.url).pathname);
const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '3000' },
    agents: { type: 'string', default: '4' },
    data: { type: 'string', default: join(root, '.data', 'demo') },
    'no-netns': { type: 'boolean', default: false },
    'no-apps': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opts.help) {
  console.log(
    'usage: node scripts/demo.mjs [--port 3000] [--agents 4] [--no-netns] [--no-apps] [--data DIR]',
  );
  process.exit(0);
}

const port = Number(opts.port);
const agentCount = Number(opts.agents);
if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`--port ${opts.port} is not a TCP port`);
if (!Number.isInteger(agentCount) || agentCount < 2 || agentCount > 16) fail('--agents must be 2..16');

const dataDir = resolve(opts.data);
const useNetns = !opts['no-netns'] && process.getuid?.() === 0 && has('ip');
const BRIDGE = 'rdmaq-demo-br';
const SUBNET = '10.77.0';
const children = [];
let stopping = false;
/** The chaos control socket (scripts/chaos.mjs, the dashboard's demo buttons); set once agents run. */
let chaos;

function fail(msg) {
  console.error(`demo: ${msg}`);
  process.exit(2);
}
function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}
function sh(cmd, { quiet = false } = {}) {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  if (r.status !== 0 && !quiet) throw new Error(`${cmd}: ${r.stderr.trim()}`);
  return r.status === 0;
}
const say = (msg) => console.log(`\x1b[1;36m==>\x1b[0m ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nodeName = (i) => `node-${i}`;
const nsName = (i) => `rdmaq-demo-${i}`;
const agentIp = (i) => (useNetns ? `${SUBNET}.${10 + i}` : '127.0.0.1');

function teardownNetwork() {
  for (let i = 1; i <= 16; i++) {
    // Deleting the host end removes the pair at once; a namespace's own teardown is asynchronous.
    sh(`ip link del rdq-d${i} 2>/dev/null`, { quiet: true });
    sh(`ip netns del ${nsName(i)} 2>/dev/null`, { quiet: true });
  }
  sh(`ip link del ${BRIDGE} 2>/dev/null`, { quiet: true });
}

function setupNetwork() {
  teardownNetwork(); // a previous demo killed hard may have left them
  sh(
    `ip link add ${BRIDGE} type bridge && ip addr add ${SUBNET}.1/24 dev ${BRIDGE} && ip link set ${BRIDGE} up`,
  );
  for (let i = 1; i <= agentCount; i++) {
    const ns = nsName(i);
    const host = `rdq-d${i}`; // interface names ≤ 15 characters
    sh(`ip netns add ${ns} && ip netns exec ${ns} ip link set lo up`);
    sh(`ip link add ${host} type veth peer name ${host}p`);
    sh(`ip link set ${host}p netns ${ns} && ip link set ${host} master ${BRIDGE} && ip link set ${host} up`);
    sh(
      `ip netns exec ${ns} ip addr add ${agentIp(i)}/24 dev ${host}p && ip netns exec ${ns} ip link set ${host}p up`,
    );
  }
}

function start(name, cmd, args, env) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const prefix = `[${name}] `;
  const forward = (stream, out) => {
    let buf = '';
    stream.on('data', (chunk) => {
      buf += chunk;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        out.write(`${prefix}${buf.slice(0, nl)}\n`);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
      }
    });
  };
  forward(child.stdout, process.stdout);
  forward(child.stderr, process.stderr);
  child.on('exit', (code, signal) => {
    // An agent killed on purpose (chaos `kill`) is part of the demo, not a reason to stop it.
    if (stopping || child.chaosKilled) return;
    console.error(`${prefix}exited (${signal ?? code}); stopping the demo`);
    void shutdown(1);
  });
  children.push(child);
  return child;
}

async function waitFor(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {}
    await sleep(250);
  }
  throw new Error(`${url} did not answer within ${timeoutMs / 1000} s`);
}

async function createAgentToken(base, user, password) {
  const login = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: user, password }),
  });
  if (!login.ok) throw new Error(`login as ${user} failed: ${login.status} ${await login.text()}`);
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0];
  const r = await fetch(`${base}/api/agent-tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie },
    body: JSON.stringify({ name: 'demo-agents' }),
  });
  if (!r.ok) throw new Error(`creating an agent token failed: ${r.status} ${await r.text()}`);
  return (await r.json()).token;
}

function agentConfig(i, hubUrl) {
  const me = nodeName(i);
  const links = [];
  for (let j = 1; j <= agentCount; j++) {
    if (j === i) continue;
    links.push({
      id: `${me}->${nodeName(j)}`,
      peer: nodeName(j),
      address: `${agentIp(j)}:${useNetns ? 7470 : 7470 + j}`,
      transport: 'fabric',
      provider: 'tcp;ofi_rxm',
      ringBytes: '1MiB',
      idle: 'event',
      // Different shapes per link so the dashboard has something to tell apart.
      traffic: {
        rate: 500 * i,
        size: { dist: 'uniform', min: 64, max: 256 * 2 ** j },
        ...(j % 2 === 0 ? { burst: { onMs: 300, offMs: 700 } } : {}),
      },
    });
  }
  // One same-host pair over shared memory (node-1 -> node-2), the transport of co-located processes.
  if (i === 1) {
    links.push({
      id: `${me}->${nodeName(2)}/shm`,
      peer: nodeName(2),
      address: join(dataDir, `${nodeName(2)}.sock`),
      transport: 'shm',
      ringBytes: '4MiB',
      idle: 'event',
      traffic: { rate: 20000, size: { dist: 'uniform', min: 64, max: 1024 } },
    });
  }
  return {
    nodeId: me,
    hub: { url: hubUrl, bufferSeconds: 600 },
    http: { host: agentIp(i), port: useNetns ? 9470 : 9470 + i },
    listen: {
      socket: join(dataDir, `${me}.sock`),
      shmDir: '/dev/shm',
      fabric: true,
      host: agentIp(i),
      port: useNetns ? 7470 : 7470 + i,
      provider: 'tcp;ofi_rxm',
      ringBytes: '1MiB',
      idle: 'event',
      // Every incoming link of the mesh, so each gets its ring and idle strategy before its sender arrives.
      expect: Array.from({ length: agentCount }, (_, k) => k + 1)
        .filter((j) => j !== i)
        .map((j) => ({ id: `${nodeName(j)}->${me}`, peer: nodeName(j), transport: 'fabric' }))
        .concat(i === 2 ? [{ id: `${nodeName(1)}->${me}/shm`, peer: nodeName(1), transport: 'shm' }] : []),
    },
    journalDir: join(dataDir, me, 'journal'),
    log: { level: 'info', pretty: 'auto' },
    links,
  };
}

const running = (c) => c.exitCode === null && c.signalCode === null;
const allExited = (cs) =>
  Promise.all(cs.map((c) => (running(c) ? new Promise((r) => c.once('exit', r)) : null)));

async function shutdown(code, signal) {
  if (stopping) return;
  stopping = true;
  say('stopping agents and dashboard');
  // Ctrl-C in a terminal reaches the whole process group: the agents and the hub got the same SIGINT and are
  // draining their links. A SIGTERM now would be their second signal ("exit at once": no drain, ring files
  // left for the next sweep): give them their drain time (5 s) first; anyone still running then gets SIGTERM.
  if (signal === 'SIGINT') await Promise.race([allExited(children), sleep(7000)]);
  chaos?.close();
  for (const c of [...children].reverse()) if (running(c)) c.kill('SIGTERM');
  await Promise.race([allExited(children), sleep(8000)]);
  for (const c of children) c.kill('SIGKILL');
  if (useNetns) teardownNetwork();
  process.exit(code);
}

// ---- the application: examples/allreduce, one rank per host ----------------------------------------------
// A training job's gradient exchange (ring all-reduce of 8 MiB every second), one process per namespace host,
// linked rank to rank over fabric (tcp;ofi_rxm on 10.77.0.1N:7600), never through the agents: the agents
// report its links from its statistics file. Like a real collective job it runs as a whole: when a rank exits
// (a chaos cut past its timeout, a crash), the others are stopped and all are started again after 5 s. An app
// exiting never stops the demo.
const APP_PORT = 7600;
function startApps() {
  const cli = join(root, 'examples/allreduce/dist/allreduce.js');
  if (!existsSync(cli)) {
    say(`no ${cli} (build it: pnpm turbo run build): the demo runs without the application`);
    return;
  }
  const appHost = (i) => `${agentIp(i)}:${useNetns ? APP_PORT : APP_PORT + i}`;
  const hosts = Array.from({ length: agentCount }, (_, k) => appHost(k + 1)).join(',');
  let ranks = [];
  let job = 0; // a rank of an earlier run of the job exiting late must not restart the current one
  let restarting = false;
  const launch = () => {
    const me = ++job;
    restarting = false;
    ranks = [];
    for (let i = 1; i <= agentCount; i++) {
      const args = [
        cli,
        ...['--rank', String(i - 1), '--hosts', hosts, '--secret-file', join(dataDir, 'cluster-secret')],
        ...['--size', '8MiB', '--compute-ms', '1000', '--log-every', '60', '--timeout-s', '120'],
      ];
      const name = `allreduce-r${i - 1}`;
      const child = useNetns
        ? start(name, 'ip', ['netns', 'exec', nsName(i), process.execPath, ...args], {})
        : start(name, process.execPath, args, {});
      // start()'s exit handler stops the whole demo; a rank's exit restarts the job instead.
      child.removeAllListeners('exit');
      child.on('exit', (code, signal) => {
        if (stopping || restarting || me !== job) return;
        restarting = true;
        console.error(`[${name}] exited (${signal ?? code}); restarting the all-reduce job in 5 s`);
        for (const r of ranks) if (running(r)) r.kill('SIGTERM');
        setTimeout(() => {
          if (!stopping) launch();
        }, 5000).unref();
      });
      ranks.push(child);
    }
  };
  say(`starting the application: ring all-reduce over ${hosts} (app="allreduce")`);
  launch();
}

async function main() {
  process.on('SIGINT', () => void shutdown(0, 'SIGINT'));
  process.on('SIGTERM', () => void shutdown(0, 'SIGTERM'));
  mkdirSync(dataDir, { recursive: true });
  // The hub creates the admin from the environment only at its first start: keep the password with the data.
  const passwordFile = join(dataDir, 'admin-password');
  if (!existsSync(passwordFile))
    writeFileSync(passwordFile, randomBytes(9).toString('base64url'), { mode: 0o600 });
  const password = readFileSync(passwordFile, 'utf8').trim();
  const secretFile = join(dataDir, 'cluster-secret');
  if (!existsSync(secretFile)) writeFileSync(secretFile, randomBytes(32).toString('hex'), { mode: 0o600 });

  if (!useNetns) {
    // Without namespaces every agent shares 127.0.0.1: give each its own ports.
    say('running without network namespaces (needs root and iproute2): agents share 127.0.0.1');
  } else {
    say(`creating ${agentCount} network namespaces (${nsName(1)}…) on bridge ${BRIDGE} ${SUBNET}.1/24`);
    setupNetwork();
  }

  const hubDir = join(dataDir, 'hub');
  const chaosSocket = join(dataDir, 'chaos.sock');
  say(`starting the dashboard on port ${port} (data in ${hubDir})`);
  start(
    'dashboard',
    process.execPath,
    [join(root, 'apps/dashboard/dist/server/bin.js'), 'serve', '--port', String(port), '--data', hubDir],
    {
      RDMAQ_ADMIN_USER: 'admin',
      RDMAQ_ADMIN_PASSWORD: password,
      RDMAQ_LOG_PRETTY: '0',
      // Login hashing (scrypt, 16 MiB each, in the thread pool) raises glibc's dynamic mmap threshold, after
      // which freed hash buffers stay in the heap: 60 wrong logins kept ~64 MB of RSS for good. A fixed
      // threshold returns them at once (measured: +64 MB retained → +0.5 MB). The deployment README says so.
      MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? '1048576',
      // Demo mode: admins get chaos buttons (cut, slow, kill…) that act through the demo's socket.
      RDMAQ_DEMO_CHAOS_SOCKET: chaosSocket,
    },
  );
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`${base}/api/health`, 60_000);
  const token = await createAgentToken(base, 'admin', password);
  const hubHost = useNetns ? `${SUBNET}.1` : '127.0.0.1';

  const chaosNodes = new Map();
  for (let i = 1; i <= agentCount; i++) {
    const me = nodeName(i);
    mkdirSync(join(dataDir, me, 'journal'), { recursive: true });
    const cfgFile = join(dataDir, `${me}.json.yaml`);
    // YAML is a superset of JSON: the config is written as JSON for exactness.
    writeFileSync(cfgFile, JSON.stringify(agentConfig(i, `ws://${hubHost}:${port}/ws/agent`), null, 2));
    const agentArgs = [join(root, 'apps/agent/dist/bin.js'), 'run', '--config', cfgFile];
    const env = { RDMAQ_HUB_TOKEN: token, RDMAQ_SECRET_FILE: secretFile };
    let child;
    const launch = () => {
      child = useNetns
        ? start(me, 'ip', ['netns', 'exec', nsName(i), process.execPath, ...agentArgs], env)
        : start(me, process.execPath, agentArgs, env);
    };
    launch();
    chaosNodes.set(me, {
      ns: nsName(i),
      hostIf: `rdq-d${i}`,
      nsIf: `rdq-d${i}p`,
      agent: () => child,
      kill: () => {
        if (!child || !running(child)) throw new Error(`${me}'s agent is not running`);
        child.chaosKilled = true;
        child.kill('SIGKILL');
      },
      start: launch,
    });
  }
  chaos = startChaosControl({ socketPath: chaosSocket, netns: useNetns, nodes: chaosNodes, log: say });

  say('waiting for the links to come up');
  const deadline = Date.now() + 60_000;
  let health = { links: { up: 0, total: 0 } };
  while (Date.now() < deadline) {
    health = await (await fetch(`${base}/api/health`)).json();
    // Each link is reported by both of its ends: a full mesh plus the shm pair.
    const expected = 2 * (agentCount * (agentCount - 1) + 1);
    if (health.links.total >= expected && health.links.up === health.links.total) break;
    await sleep(1000);
  }
  if (!opts['no-apps']) startApps();
  console.log(`
  rdmaq demo is running: ${agentCount} agents, ${health.links.up}/${health.links.total} links up.

    Dashboard:  http://localhost:${port}      login: admin / ${password}
    App:        ${opts['no-apps'] ? '(--no-apps)' : 'examples/allreduce, one rank per host (app="allreduce" on /metrics and the dashboard; rdmaq-stat)'}
    Agents:     ${Array.from({ length: agentCount }, (_, k) => `http://${agentIp(k + 1)}:${useNetns ? 9470 : 9471 + k}/metrics`).join('  ')}
    Chaos:      node scripts/chaos.mjs cut node-2 | restore node-2 | slow node-2 [20mbit] | unslow node-2
                                   | kill node-2 | restart node-2 | status   (--data ${dataDir})
                (admins also get these as buttons on each node page)
  Ctrl-C stops everything${useNetns ? ' and removes the namespaces' : ''}.
`);
}

main().catch((err) => {
  console.error(`demo: ${err.message}`);
  void shutdown(1);
});
