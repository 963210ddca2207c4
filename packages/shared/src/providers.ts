/**
 * Provider classes: what latency a healthy link can be expected to have depends first on what carries it.
 * The hub labels every link end with its class (`provider_class`) so alert rules, silences and views can
 * tell them apart without listing every libfabric provider name.
 *
 *   rdma   RDMA NICs with OS bypass: verbs, efa, psm/psm2/psm3, opx, cxi, ucx, usnic, gni (microseconds)
 *   tcp    TCP/IP or UDP in the kernel's network stack: tcp, net, sockets, udp (tens of µs to ms, jittery)
 *   shm    same host: the shm transport, libfabric's shm/sm2 (µs, but at the mercy of the CPU scheduler)
 *   other  a provider this table does not know (judged like tcp by the default rules: fewer false alarms)
 *
 * A libfabric provider string may name a core provider and a utility one (`tcp;ofi_rxm`, `verbs;ofi_rxm`,
 * `udp;ofi_rxd`): the core provider (the first part) decides.
 */
import type { Transport } from './protocol.js';

export const PROVIDER_CLASSES = ['rdma', 'tcp', 'shm', 'other'] as const;
export type ProviderClass = (typeof PROVIDER_CLASSES)[number];

const RDMA = new Set([
  'verbs',
  'efa',
  'psm',
  'psm2',
  'psm3',
  'opx',
  'cxi',
  'ucx',
  'usnic',
  'gni',
  'bgq',
  'mlx',
]);
const TCP = new Set(['tcp', 'net', 'sockets', 'udp']);
const SHM = new Set(['shm', 'sm2']);

/** The class of a link end's provider (`LinkSample.provider`, e.g. `tcp;ofi_rxm`) and transport. */
export function providerClass(provider: string, transport?: Transport): ProviderClass {
  if (transport === 'shm') return 'shm';
  const core = (provider.split(';', 1)[0] ?? '').trim().toLowerCase();
  if (RDMA.has(core)) return 'rdma';
  if (TCP.has(core)) return 'tcp';
  if (SHM.has(core)) return 'shm';
  return 'other';
}
