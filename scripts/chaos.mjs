// Chaos for the running demo (`make demo`): what an operator rehearses before a real incident.
//
//   node scripts/chaos.mjs status
//   node scripts/chaos.mjs cut node-2          cut the host off the network (its veth down)
//   node scripts/chaos.mjs restore node-2
//   node scripts/chaos.mjs slow node-2 20mbit  shape its path both ways with tc tbf (this kernel has no netem)
//   node scripts/chaos.mjs unslow node-2
//   node scripts/chaos.mjs kill node-2         SIGKILL its agent
//   node scripts/chaos.mjs restart node-2
//
// Options: --data DIR (the demo's data directory, default .data/demo). The demo performs the actions: it
// owns the namespaces and the agent processes (scripts/demo-chaos.mjs).
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CHAOS_ACTIONS, chaosRequest } from './demo-chaos.mjs';

const root = resolve(new URL('..', import.meta.url).pathname);
const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    data: { type: 'string', default: join(root, '.data', 'demo') },
    help: { type: 'boolean', short: 'h' },
  },
});
const [action, node, rate] = positionals;
if (opts.help || !action || !CHAOS_ACTIONS.includes(action) || (action !== 'status' && !node)) {
  console.error(
    `usage: node scripts/chaos.mjs <${CHAOS_ACTIONS.join('|')}> [node-N] [rate, e.g. 20mbit] [--data DIR]`,
  );
  process.exit(opts.help ? 0 : 2);
}
try {
  const reply = await chaosRequest(join(resolve(opts.data), 'chaos.sock'), {
    action,
    ...(node ? { node } : {}),
    ...(rate ? { rate } : {}),
  });
  if (reply.ok === false) {
    console.error(`chaos: ${reply.error}`);
    process.exit(1);
  }
  if (action !== 'status') console.log(`done: ${action} ${node}${rate ? ` ${rate}` : ''}`);
  for (const n of reply.nodes ?? [])
    console.log(
      `  ${n.node.padEnd(8)} agent ${n.agent.padEnd(8)} path ${n.path}${n.slowed ? `, slowed to ${n.slowed}` : ''}`,
    );
} catch (err) {
  console.error(`chaos: ${err.message}`);
  process.exit(1);
}
