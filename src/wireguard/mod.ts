/**
 * The WireGuard protocol, sans-IO: see device.ts for the packet flow.
 * The pump uses WireGuardDevice; config and key helpers serve the CLI and
 * the connector.
 */
export {
  type DeviceOptions,
  type DropCounters,
  type DropReason,
  type InboundResult,
  type OutboundResult,
  type OutgoingDatagram,
  type PeerEvent,
  WireGuardDevice,
} from "./device.ts";
export { Peer, type PeerConfig, type PeerStats } from "./peer.ts";
export { AllowedIps } from "./allowed_ips.ts";
export {
  parseWgQuick,
  serializeWgQuick,
  type WgQuickConfig,
  type WgQuickInterface,
  type WgQuickPeer,
} from "./config.ts";
export {
  constantTimeEqual,
  decodeKey,
  encodeKey,
  generatePresharedKey,
  generatePrivateKey,
  parseKey,
  publicKeyOf,
  type RandomSource,
  systemRandom,
} from "./keys.ts";
export { formatIp, parseIp, parsePrefix } from "./ip.ts";
export {
  COOKIE_REPLY_SIZE,
  INITIATION_SIZE,
  RESPONSE_SIZE,
  TRANSPORT_HEADER_SIZE,
  TRANSPORT_MIN_SIZE,
} from "./messages.ts";
export { TAG_SIZE } from "./aead.ts";
export * as timers from "./timers.ts";
