/**
 * `rdmaq-agent check`: validates the configuration, lists the libfabric providers and the local RDMA devices
 * (/sys/class/infiniband), and says whether every configured provider is available here. Opens nothing.
 */
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AgentConfig } from './config.js';
import { errorMessage } from './errors.js';

export interface RdmaPort {
  port: string;
  state: string;
  physState: string;
  linkLayer: string;
  rate: string;
}

export interface RdmaDevice {
  name: string;
  nodeGuid: string;
  ports: RdmaPort[];
}

function readTrim(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** RDMA devices the kernel knows (InfiniBand, RoCE, iWARP, EFA all appear under /sys/class/infiniband). */
export function listRdmaDevices(root = '/sys/class/infiniband'): RdmaDevice[] {
  let names: string[];
  try {
    names = readdirSync(root).sort();
  } catch {
    return [];
  }
  return names.map((name) => {
    const dir = join(root, name);
    let ports: string[] = [];
    try {
      ports = readdirSync(join(dir, 'ports')).sort((a, b) => Number(a) - Number(b));
    } catch {
      ports = [];
    }
    return {
      name,
      nodeGuid: readTrim(join(dir, 'node_guid')),
      ports: ports.map((p) => ({
        port: p,
        state: readTrim(join(dir, 'ports', p, 'state')),
        physState: readTrim(join(dir, 'ports', p, 'phys_state')),
        linkLayer: readTrim(join(dir, 'ports', p, 'link_layer')),
        rate: readTrim(join(dir, 'ports', p, 'rate')),
      })),
    };
  });
}

export interface CheckReport {
  ok: boolean;
  nodeId: string;
  fabricVersion: string | null;
  providers: string[];
  devices: RdmaDevice[];
  problems: string[];
  notes: string[];
}

export interface CheckDeps {
  providers: () => string[];
  fabricVersion: () => string;
  devicesRoot?: string;
}

export function runCheck(config: AgentConfig, deps: CheckDeps): CheckReport {
  const problems: string[] = [];
  const notes: string[] = [];
  let providers: string[] = [];
  let fabricVersion: string | null = null;
  try {
    providers = deps.providers();
    fabricVersion = deps.fabricVersion();
  } catch (err) {
    problems.push(
      `cannot query libfabric: ${errorMessage(err)} (install libfabric1 and rebuild the rdma-core addon)`,
    );
  }
  const devices = listRdmaDevices(deps.devicesRoot);
  if (devices.length === 0) {
    notes.push(
      'no RDMA devices in /sys/class/infiniband: fabric links can only use the IP providers (tcp;ofi_rxm, net); for verbs load the NIC driver (e.g. mlx5_ib) and rdma_ucm',
    );
  } else {
    const active = devices.flatMap((d) =>
      d.ports.filter((p) => p.state.includes('ACTIVE')).map(() => d.name),
    );
    if (active.length === 0)
      problems.push(
        'RDMA devices exist but no port is ACTIVE: check cabling, the subnet manager (IB) or the RoCE interface',
      );
  }
  const want = new Map<string, string[]>();
  const need = (provider: string, where: string) =>
    want.set(provider, [...(want.get(provider) ?? []), where]);
  if (config.listen.enabled && config.listen.fabric && config.listen.provider) {
    need(config.listen.provider, 'listen.provider');
  }
  for (const [i, l] of config.links.entries()) {
    if (l.transport === 'fabric') need(l.provider ?? 'tcp;ofi_rxm', `links.${i}.provider (${l.id})`);
  }
  if (providers.length > 0) {
    for (const [p, where] of want) {
      if (!providers.includes(p)) {
        problems.push(
          `provider "${p}" (${where.join(', ')}) is not offered by libfabric here; available: ${providers.join(', ')}`,
        );
      }
    }
  }
  if (want.has('sockets') || [...want.keys()].some((p) => p.startsWith('sockets'))) {
    notes.push('the sockets provider has millisecond latencies; prefer tcp;ofi_rxm or net');
  }
  if (config.listen.enabled) {
    const dir = dirname(config.listen.socket);
    if (!existsSync(dir))
      problems.push(
        `listen.socket directory ${dir} does not exist (create it, e.g. RuntimeDirectory=rdmaq in systemd)`,
      );
    else if (!writable(dir)) problems.push(`listen.socket directory ${dir} is not writable by this user`);
    if (!existsSync(config.listen.shmDir))
      problems.push(`listen.shmDir ${config.listen.shmDir} does not exist`);
  }
  if (config.links.some((l) => l.journal)) {
    if (!existsSync(config.journalDir))
      problems.push(`journalDir ${config.journalDir} does not exist (links with journal: true need it)`);
    else if (!writable(config.journalDir))
      problems.push(`journalDir ${config.journalDir} is not writable by this user`);
  }
  if (!config.hub) notes.push('no hub configured: statistics are served on /metrics only');
  return {
    ok: problems.length === 0,
    nodeId: config.nodeId,
    fabricVersion,
    providers,
    devices,
    problems,
    notes,
  };
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function formatCheck(r: CheckReport, config: AgentConfig): string {
  const lines: string[] = [];
  lines.push(`configuration: valid (node ${r.nodeId}, ${config.links.length} outgoing link(s))`);
  lines.push(`libfabric: ${r.fabricVersion ?? 'unavailable'}`);
  lines.push(`providers: ${r.providers.length ? r.providers.join(', ') : '(none)'}`);
  if (r.devices.length === 0) lines.push('RDMA devices: none');
  for (const d of r.devices) {
    lines.push(`RDMA device ${d.name} (node GUID ${d.nodeGuid})`);
    for (const p of d.ports)
      lines.push(`  port ${p.port}: ${p.state}, ${p.physState}, ${p.linkLayer}, ${p.rate}`);
  }
  for (const l of config.links) {
    lines.push(
      `link ${l.id} → ${l.peer} at ${l.address}: ${l.transport}${l.transport === 'fabric' ? ` (${l.provider ?? 'tcp;ofi_rxm'})` : ''}`,
    );
  }
  for (const n of r.notes) lines.push(`note: ${n}`);
  for (const p of r.problems) lines.push(`problem: ${p}`);
  lines.push(r.ok ? 'check passed' : `check failed: ${r.problems.length} problem(s)`);
  return lines.join('\n');
}
