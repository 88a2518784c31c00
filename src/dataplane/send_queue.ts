/**
 * The pump's outgoing datagrams: encrypted slots (and the device's control
 * messages) queued by reference and sent in one UDP call per flush, so runs
 * for one peer reach UdpSocket.send together and leave as GSO messages;
 * datagrams for a TLS endpoint go to the TLS transport at once.
 *
 * A full socket buffer drops the rest of the flush (UDP may drop, and so do
 * we: TCP inside recovers); every datagram is counted as sent or dropped.
 */
import type { Endpoint } from "../net/endpoint.ts";
import type { UdpSocket } from "../net/udp.ts";
import type { TlsStream } from "../net/tls_stream.ts";
import type { OutgoingDatagram } from "../wireguard/mod.ts";

/** The two counters the queue keeps (the pump's own stats object). */
export interface SendCounters {
  sent: number;
  sendDropped: number;
}

/** Queues datagrams by reference and flushes them through the transports. */
export class SendQueue {
  readonly #bufs: Uint8Array[];
  readonly #sizes: Int32Array;
  readonly #eps: Endpoint[];
  #count = 0;
  readonly #stats: SendCounters;
  /** The UDP socket to send on (null: UDP datagrams are dropped and counted). */
  udp: UdpSocket | null = null;
  /** The TLS transport (null: TLS datagrams are dropped and counted). */
  tls: TlsStream | null = null;

  /** Room for `capacity` datagrams between flushes (it flushes itself when full). */
  constructor(capacity: number, stats: SendCounters) {
    this.#bufs = new Array(capacity);
    this.#sizes = new Int32Array(capacity);
    this.#eps = new Array(capacity);
    this.#stats = stats;
  }

  /** Queues datagram `slot[0 .. length]` for `ep` (a TLS endpoint is sent at once). */
  add(slot: Uint8Array, length: number, ep: Endpoint): void {
    if (ep.transport === "tls") {
      if (this.tls && this.tls.send(ep, slot.subarray(0, length))) this.#stats.sent++;
      else this.#stats.sendDropped++;
      return;
    }
    const i = this.#count++;
    this.#bufs[i] = slot;
    this.#sizes[i] = length;
    this.#eps[i] = ep;
    if (this.#count === this.#bufs.length) this.flush();
  }

  /** Queues the device's control messages (handshakes, keepalives, staged data) and flushes. */
  addOutgoing(msgs: OutgoingDatagram[]): void {
    for (const m of msgs) this.add(m.data, m.data.length, m.endpoint);
    this.flush();
  }

  /** Sends what is queued. */
  flush(): void {
    const n = this.#count;
    if (n === 0) return;
    this.#count = 0;
    const udp = this.udp;
    if (!udp) {
      this.#stats.sendDropped += n;
      return;
    }
    let off = 0;
    while (off < n) {
      const sent = off === 0 ? udp.send(this.#bufs, this.#sizes, this.#eps, n, 0) : udp.send(
        this.#bufs.slice(off),
        this.#sizes.subarray(off),
        this.#eps.slice(off),
        n - off,
        0,
      );
      if (sent <= 0) {
        // Socket buffer full: UDP may drop, and so do we (TCP inside recovers).
        this.#stats.sendDropped += n - off;
        break;
      }
      this.#stats.sent += sent;
      off += sent;
    }
  }
}
