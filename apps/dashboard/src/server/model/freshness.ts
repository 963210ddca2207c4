/**
 * Freshness and blame: how current each node's data is, and which host is at fault for a link end that is
 * not up. Judged once per live tick and per alert evaluation, O(nodes + links), no allocation per link.
 */
import type { Freshness, NodeSummary } from '@rdmaq/shared';
import type { FleetChanges } from './changes.js';
import type { LinkEnd, NodeEntry } from './types.js';

/** Fewest ms before a node counts as stale, whatever its sample period: one late sample is not news. */
const MIN_STALE_MS = 2500;

export interface FreshnessOptions {
  /** A node is stale after this many of its sample periods without a sample (default 3). */
  staleAfterSamples?: number;
  /** …and offline after this many seconds without one, connected or not (default 10). */
  offlineAfterS?: number;
}

/** fresh / stale / offline of one node at `now` (hub clock), from the age of its last sample. */
export function freshnessOf(n: NodeEntry, now: number, o: FreshnessOptions): Freshness {
  if (!n.connected) return 'offline';
  const age = now - n.lastDataAt;
  if (age > (o.offlineAfterS ?? 10) * 1000) return 'offline';
  if (age > Math.max(MIN_STALE_MS, (o.staleAfterSamples ?? 3) * n.intervalMs)) return 'stale';
  return 'fresh';
}

/** The host part of a peer given as `host`, `host:port` or `[v6]:port`. */
export function hostOf(peer: string): string {
  if (peer.startsWith('[')) {
    const end = peer.indexOf(']');
    return end > 0 ? peer.slice(1, end) : peer;
  }
  const colon = peer.indexOf(':');
  // One colon: host:port. Several: a bare IPv6 address.
  return colon > 0 && peer.indexOf(':', colon + 1) < 0 ? peer.slice(0, colon) : peer;
}

/** Sets every link end's `peerNode` (see LinkEnd.peerNode); O(nodes + links). */
function resolvePeers(
  nodes: ReadonlyMap<string, NodeEntry>,
  links: ReadonlyMap<string, LinkEnd>,
  changes: FleetChanges,
): void {
  const byAddress = new Map<string, string>();
  for (const n of nodes.values()) for (const a of n.addresses) byAddress.set(a, n.id);
  // An application's ends are `<app>/<link>:tx|rx`: the send end names the peer's address, the receive end
  // cannot; pair them by the part before the direction.
  const sendEnds = new Map<string, string>();
  for (const l of links.values())
    if (l.app !== undefined && l.id.endsWith(':tx')) sendEnds.set(l.id.slice(0, -3), l.node);
  for (const l of links.values()) {
    let p: string | undefined;
    if (nodes.has(l.peer)) p = l.peer;
    else {
      p = byAddress.get(hostOf(l.peer));
      if (p === undefined && l.app !== undefined && l.id.endsWith(':rx')) p = sendEnds.get(l.id.slice(0, -3));
    }
    if (p === l.node) p = undefined;
    if (p !== l.peerNode) {
      l.peerNode = p;
      changes.link(l.key);
    }
  }
}

/**
 * Re-judges every node's freshness, every link end's blame and every node's health; records what changed
 * in `changes`. Returns the ids of nodes that are still connected but went offline by silence: a host cut
 * off from the network keeps its TCP connection "open" until the kernel gives up (minutes), so the caller
 * closes it and the agent reconnects once its path is back.
 *
 * Blame: an end that is not up is the fault of its peer when the peer is not fresh (its own figures
 * cannot be believed) or when the peer looks cut off — links to at least two distinct peers and to at
 * least half of its peers are not up — while this node does not; otherwise its own node's. A node's
 * health counts only the ends blamed on itself, so the peers of a cut-off host stay green apart from
 * their links to it, and the host that went silent is the one shown red.
 */
export function judgeFreshness(
  nodes: ReadonlyMap<string, NodeEntry>,
  links: ReadonlyMap<string, LinkEnd>,
  now: number,
  o: FreshnessOptions,
  changes: FleetChanges,
): string[] {
  const silent: string[] = [];
  for (const n of nodes.values()) {
    const f = freshnessOf(n, now, o);
    if (f === n.freshness) continue;
    if (f === 'offline' && n.connected) silent.push(n.id);
    n.freshness = f;
    changes.node(n.id);
    for (const l of n.links.values()) changes.link(l.key);
  }
  resolvePeers(nodes, links, changes);
  // Cut-off suspects: distinct peers with a link end that is not up, against distinct peers.
  const cutOff = new Set<string>();
  for (const n of nodes.values()) {
    if (n.freshness !== 'fresh' || n.links.size < 2) continue;
    let peers = 0;
    let peersNotUp = 0;
    const seen = new Map<string, boolean>();
    for (const l of n.links.values()) {
      const notUp = l.state !== 'up' && l.state !== 'degraded';
      const peerId = l.peerNode ?? l.peer;
      const was = seen.get(peerId);
      if (was === undefined) {
        peers++;
        if (notUp) peersNotUp++;
        seen.set(peerId, notUp);
      } else if (notUp && !was) {
        peersNotUp++;
        seen.set(peerId, true);
      }
    }
    if (peersNotUp >= 2 && peersNotUp * 2 >= peers) cutOff.add(n.id);
  }
  for (const n of nodes.values()) {
    let worst: NodeSummary['health'] = 'ok';
    let byPeer = 0;
    for (const l of n.links.values()) {
      let blame: string | undefined;
      if (l.state !== 'up') {
        const peer = l.peerNode === undefined ? undefined : nodes.get(l.peerNode);
        const peerAtFault =
          peer !== undefined && (peer.freshness !== 'fresh' || (cutOff.has(peer.id) && !cutOff.has(n.id)));
        blame = n.freshness === 'fresh' && peer !== undefined && peerAtFault ? peer.id : n.id;
      }
      if (blame !== l.blame) {
        l.blame = blame;
        changes.link(l.key);
      }
      if (blame === undefined) continue;
      if (blame !== n.id) byPeer++;
      else if (l.state === 'down') worst = 'down';
      else if (worst === 'ok') worst = 'degraded';
    }
    const health: NodeSummary['health'] = n.freshness === 'fresh' ? worst : n.freshness;
    if (health !== n.health || byPeer !== n.linksDownByPeer) {
      n.health = health;
      n.linksDownByPeer = byPeer;
      changes.node(n.id);
    }
  }
  return silent;
}
