/**
 * Packet parsing and building: IPv4/IPv6, TCP/UDP/ICMP/ICMPv6, checksums,
 * five-tuples, pcap files and DNS messages. Pure: no I/O except the pcap
 * file sink, which is injectable.
 */
export * from "./addr.ts";
export * from "./checksum.ts";
export * from "./ip.ts";
export * from "./transport.ts";
export * from "./build.ts";
export * from "./pcap.ts";
export * from "./dns.ts";
