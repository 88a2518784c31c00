/**
 * Platform chooser: opens the right TunDevice for the OS we run on, so the
 * composition root never branches on Deno.build.os itself.
 */
import { PortcullisError } from "../errors.ts";
import type { TunDevice, TunOffloadRequest } from "./mod.ts";
import { LinuxTun } from "./linux.ts";
import { loadWintun, WindowsTun, type WintunApi } from "./windows.ts";

/** What to open. */
export interface OpenTunOptions {
  /** Interface name ("pc0"); Linux picks one when omitted, Windows requires it (default "Portcullis"). */
  name?: string;
  /** MTU in bytes (default: the OS's on Linux, 1420 on Windows). */
  mtu?: number;
  /** Windows only: path to wintun.dll, or injected symbols. */
  wintun?: string | WintunApi;
  /** Kernel offloads to ask for (Linux; Wintun has none). */
  offload?: TunOffloadRequest;
}

/** Opens a TUN device on Linux or Windows; throws a clear error elsewhere. */
export function openTun(opts: OpenTunOptions = {}, os: string = Deno.build.os): TunDevice {
  if (os === "linux") {
    return LinuxTun.open({ name: opts.name, mtu: opts.mtu, offload: opts.offload });
  }
  if (os === "windows") {
    const api = typeof opts.wintun === "object" ? opts.wintun : loadWintun(opts.wintun);
    return WindowsTun.open({ name: opts.name ?? "Portcullis", mtu: opts.mtu }, api);
  }
  throw new PortcullisError(
    "unsupported_platform",
    `Cannot open TUN device "${opts.name ?? ""}": ${os} is not supported (Linux and Windows are)`,
  );
}
