/**
 * The fabric transport (libfabric RMA across hosts): FabricListener/FabricReceiver on the receiving host,
 * FabricSender on the sending one. See FABRIC.md.
 */
export { FabricListener, type FabricListenOptions, listenFabric } from './listener.js';
export type { FabricInfo } from './native.js';
export { FabricReceiver, type FabricReceiverOptions } from './receiver.js';
export { connectFabric, FABRIC_DEFAULT_CAPACITY, FabricSender, type FabricSenderOptions } from './sender.js';

import { type FabricInfo, fabricNative } from './native.js';

/**
 * What an endpoint of `provider` gets on this host (fi_info read back: CQ data size, inject size, tx depth,
 * mr_mode …). Throws ERR_RDMAQ_NO_PROVIDER (unknown provider, listing those that exist) or
 * ERR_RDMAQ_NO_DEVICE ("no RDMA device found (verbs): …").
 */
export function fabricProbe(provider: string, node = '127.0.0.1'): FabricInfo {
  return fabricNative.fabricProbe(provider, node);
}
