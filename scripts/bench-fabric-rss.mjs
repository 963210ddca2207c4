// Memory of fabric links: RSS of one process holding N tcp;ofi_rxm links (both ends of each, 1 MiB rings)
// with rdmaq's rxm settings, beside the same run with libfabric's own defaults (the baseline).
//   node scripts/bench-fabric-rss.mjs [--links 3] [--provider 'tcp;ofi_rxm']
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    links: { type: 'string', default: '3' },
    provider: { type: 'string', default: 'tcp;ofi_rxm' },
    child: { type: 'boolean' },
  },
});
const links = Number(values.links);

if (values.child) {
  const { connect, listen } = await import('../packages/rdma-core/dist/index.js');
  const rss = () => process.memoryUsage().rss;
  const secret = 'bench-secret-of-enough-length';
  const base = rss();
  const listener = await listen({
    socketPath: `/tmp/rdmaq-rss-${process.pid}.sock`,
    tcp: { host: '127.0.0.1', port: 0, secret },
  });
  const port = listener.port;
  const ends = [];
  for (let i = 0; i < links; i++) {
    const rx = listener.accept(`rss-${i}`, { transport: 'fabric', capacity: 1 << 20, idle: 'event' });
    rx.start(() => {});
    const tx = await connect({
      linkId: `rss-${i}`,
      transport: 'fabric',
      host: '127.0.0.1',
      port,
      secret,
      provider: values.provider,
      capacity: 1 << 20,
    });
    ends.push(rx, tx);
  }
  const payload = Buffer.alloc(256);
  for (let round = 0; round < 200; round++) {
    for (let i = 1; i < ends.length; i += 2) for (let k = 0; k < 20; k++) ends[i].send(payload);
    await new Promise((r) => setTimeout(r, 5));
  }
  console.log(JSON.stringify({ rssBytes: rss() - base }));
  process.exit(0);
}

const run = (env) => {
  const r = spawnSync(
    process.execPath,
    [new URL(import.meta.url).pathname, '--child', '--links', String(links), '--provider', values.provider],
    { env: { ...process.env, ...env }, encoding: 'utf8' },
  );
  const line = r.stdout.trim().split('\n').pop();
  if (r.status !== 0 || !line) throw new Error(`child failed: ${r.stderr}`);
  return JSON.parse(line).rssBytes / 1e6;
};
const ours = run({});
const defaults = run({
  FI_OFI_RXM_MSG_RX_SIZE: '4096',
  FI_OFI_RXM_BUFFER_SIZE: '16384',
  FI_OFI_RXM_EAGER_LIMIT: '16384',
});
console.log(
  `${links} ${values.provider} links (both ends, 1 MiB rings, 256 B traffic): RSS +${ours.toFixed(0)} MB with rdmaq's rxm settings, +${defaults.toFixed(0)} MB with libfabric's defaults (${(defaults / ours).toFixed(1)}x)`,
);
