/**
 * wintun.dll and kernel32 symbol tables for the Windows TUN device.
 *
 * Wintun hands out packets as pointers into a ring shared with its driver;
 * src/tun/windows.ts copies them into the pump's slots and releases each one.
 * Handles and packet pointers are opaque `pointer`s; names are UTF-16
 * NUL-terminated strings passed as `buffer`; DWORD is `u32`.
 */

/** The wintun.dll functions the data plane calls (see wintun.h). */
export const WINTUN_SYMBOLS = {
  /** WINTUN_ADAPTER_HANDLE WintunCreateAdapter(LPCWSTR Name, LPCWSTR TunnelType, const GUID *RequestedGUID, may be NULL) */
  WintunCreateAdapter: { parameters: ["buffer", "buffer", "buffer"], result: "pointer" },
  /** WINTUN_ADAPTER_HANDLE WintunOpenAdapter(LPCWSTR Name) */
  WintunOpenAdapter: { parameters: ["buffer"], result: "pointer" },
  /** void WintunCloseAdapter(WINTUN_ADAPTER_HANDLE Adapter) */
  WintunCloseAdapter: { parameters: ["pointer"], result: "void" },
  /** WINTUN_SESSION_HANDLE WintunStartSession(WINTUN_ADAPTER_HANDLE Adapter, DWORD Capacity: a power of 2, 128 KiB-64 MiB) */
  WintunStartSession: { parameters: ["pointer", "u32"], result: "pointer" },
  /** void WintunEndSession(WINTUN_SESSION_HANDLE Session) */
  WintunEndSession: { parameters: ["pointer"], result: "void" },
  /** HANDLE WintunGetReadWaitEvent(WINTUN_SESSION_HANDLE Session) — owned by the session, never closed by us */
  WintunGetReadWaitEvent: { parameters: ["pointer"], result: "pointer" },
  /** BYTE *WintunReceivePacket(WINTUN_SESSION_HANDLE Session, DWORD *PacketSize) */
  WintunReceivePacket: { parameters: ["pointer", "buffer"], result: "pointer" },
  /** void WintunReleaseReceivePacket(WINTUN_SESSION_HANDLE Session, const BYTE *Packet) */
  WintunReleaseReceivePacket: { parameters: ["pointer", "pointer"], result: "void" },
  /** BYTE *WintunAllocateSendPacket(WINTUN_SESSION_HANDLE Session, DWORD PacketSize) */
  WintunAllocateSendPacket: { parameters: ["pointer", "u32"], result: "pointer" },
  /** void WintunSendPacket(WINTUN_SESSION_HANDLE Session, const BYTE *Packet) */
  WintunSendPacket: { parameters: ["pointer", "pointer"], result: "void" },
  /** void WintunGetAdapterLUID(WINTUN_ADAPTER_HANDLE Adapter, NET_LUID *Luid: 8 bytes out) */
  WintunGetAdapterLUID: { parameters: ["pointer", "buffer"], result: "void" },
  /** DWORD WintunGetRunningDriverVersion(void) — 0 and GetLastError when not loaded */
  WintunGetRunningDriverVersion: { parameters: [], result: "u32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The kernel32.dll functions used beside Wintun. */
export const KERNEL32_SYMBOLS = {
  /** DWORD WaitForSingleObject(HANDLE hHandle, DWORD dwMilliseconds) — on a worker thread */
  WaitForSingleObject: { parameters: ["pointer", "u32"], result: "u32", nonblocking: true },
  /** DWORD GetLastError(void) */
  GetLastError: { parameters: [], result: "u32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** wintun.dll's symbols, typed. */
export type WintunSymbols = Deno.DynamicLibrary<typeof WINTUN_SYMBOLS>["symbols"];
/** kernel32's symbols, typed. */
export type Kernel32Symbols = Deno.DynamicLibrary<typeof KERNEL32_SYMBOLS>["symbols"];

/** ERROR_HANDLE_EOF: the session is ending or ended. */
export const ERROR_HANDLE_EOF = 38;
/** ERROR_INVALID_DATA: the ring is corrupt. */
export const ERROR_INVALID_DATA = 13;
/** ERROR_BUFFER_OVERFLOW: the send ring is full. */
export const ERROR_BUFFER_OVERFLOW = 111;
/** ERROR_NO_MORE_ITEMS: no packet waiting. */
export const ERROR_NO_MORE_ITEMS = 259;
/** WaitForSingleObject: signalled. */
export const WAIT_OBJECT_0 = 0;
/** WaitForSingleObject: timed out. */
export const WAIT_TIMEOUT = 0x102;
/** WaitForSingleObject: failed. */
export const WAIT_FAILED = 0xffffffff;
/** Largest packet Wintun carries. */
export const WINTUN_MAX_IP_PACKET_SIZE = 0xffff;
