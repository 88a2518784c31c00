/**
 * struct virtio_net_hdr (include/uapi/linux/virtio_net.h): the 10 bytes a TUN
 * device opened with IFF_VNET_HDR puts before every packet it hands us, and
 * expects before every packet we write. It says whether the packet is a
 * super-packet to be segmented (gso_type, gso_size) and whether its
 * transport checksum is still partial (NEEDS_CSUM, csum_start/csum_offset).
 *
 * The TUN device uses the host's byte order for these fields unless told
 * otherwise (TUNSETVNETLE/BE); every host Portcullis runs on is
 * little-endian, so they are read and written little-endian here.
 */

/** Size of struct virtio_net_hdr (without num_buffers). */
export const VNET_HDR_SIZE = 10;

/** flags: the transport checksum covers csum_start.. and is still partial (CHECKSUM_PARTIAL). */
export const VNET_F_NEEDS_CSUM = 1;
/** flags: the checksum was already verified (CHECKSUM_UNNECESSARY). */
export const VNET_F_DATA_VALID = 2;

/** gso_type: not a super-packet. */
export const VNET_GSO_NONE = 0;
/** gso_type: TCP over IPv4 super-packet. */
export const VNET_GSO_TCPV4 = 1;
/** gso_type: UDP fragmentation offload (UFO; we never ask for it). */
export const VNET_GSO_UDP = 3;
/** gso_type: TCP over IPv6 super-packet. */
export const VNET_GSO_TCPV6 = 4;
/** gso_type: UDP super-packet split into datagrams of gso_size (USO, Linux 6.2+). */
export const VNET_GSO_UDP_L4 = 5;
/** gso_type flag: the TCP super-packet carries ECN (CWR only on the first segment). */
export const VNET_GSO_ECN = 0x80;

/** A decoded virtio_net_hdr (a reusable struct: decode into it, no allocation). */
export interface VnetHeader {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/** Makes an empty header struct to decode into. */
export function newVnetHeader(): VnetHeader {
  return { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
}

/** Reads the header at `buf[off .. off+10]` into `out`. */
export function readVnetHeader(buf: Uint8Array, off: number, out: VnetHeader): VnetHeader {
  out.flags = buf[off];
  out.gsoType = buf[off + 1];
  out.hdrLen = buf[off + 2] | (buf[off + 3] << 8);
  out.gsoSize = buf[off + 4] | (buf[off + 5] << 8);
  out.csumStart = buf[off + 6] | (buf[off + 7] << 8);
  out.csumOffset = buf[off + 8] | (buf[off + 9] << 8);
  return out;
}

/** Writes a header at `buf[off .. off+10]`. */
export function writeVnetHeader(
  buf: Uint8Array,
  off: number,
  flags: number,
  gsoType: number,
  hdrLen: number,
  gsoSize: number,
  csumStart: number,
  csumOffset: number,
): void {
  buf[off] = flags;
  buf[off + 1] = gsoType;
  buf[off + 2] = hdrLen & 0xff;
  buf[off + 3] = hdrLen >>> 8;
  buf[off + 4] = gsoSize & 0xff;
  buf[off + 5] = gsoSize >>> 8;
  buf[off + 6] = csumStart & 0xff;
  buf[off + 7] = csumStart >>> 8;
  buf[off + 8] = csumOffset & 0xff;
  buf[off + 9] = csumOffset >>> 8;
}

/** Writes the all-zero header of a plain packet (no GSO, checksum complete). */
export function writePlainVnetHeader(buf: Uint8Array, off: number): void {
  buf.fill(0, off, off + VNET_HDR_SIZE);
}
