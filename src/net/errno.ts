/**
 * The one place libc is opened, and the one helper that turns a failed call
 * (-1 and errno) into a SyscallError whose message names the action and the
 * object: `Cannot open TUN device "pc0": operation not permitted (EPERM)`.
 *
 * errno is thread-local; synchronous FFI calls run on the JS thread, so
 * reading it right after such a call is correct. The pointer to it is taken
 * once because the JS thread never changes.
 */
import { type Libc, LIBC_SYMBOLS } from "../../ffi/libc.ts";
import { SyscallError } from "../errors.ts";

let lib: Libc | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

/** Returns libc's symbols, opening the library on first use (Linux only). */
export function libc(): Libc {
  if (lib) return lib;
  if (Deno.build.os !== "linux") {
    throw new SyscallError("dlopen", 0, `Cannot load libc on ${Deno.build.os}: Linux only`);
  }
  lib = Deno.dlopen("libc.so.6", LIBC_SYMBOLS).symbols;
  return lib;
}

/** Returns the JS thread's current errno. */
export function lastErrno(): number {
  if (!errnoView) {
    const p = libc().__errno_location();
    if (!p) return 0;
    errnoView = new Deno.UnsafePointerView(p);
  }
  return errnoView.getInt32(0);
}

const NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  25: "ENOTTY",
  88: "ENOTSOCK",
  90: "EMSGSIZE",
  92: "ENOPROTOOPT",
  95: "EOPNOTSUPP",
  97: "EAFNOSUPPORT",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  101: "ENETUNREACH",
  105: "ENOBUFS",
  111: "ECONNREFUSED",
  113: "EHOSTUNREACH",
};

/** Returns the symbolic name of an errno value ("EPERM"), or "errno N". */
export function errnoName(errno: number): string {
  return NAMES[errno] ?? `errno ${errno}`;
}

/**
 * Builds the SyscallError for a failed `call`; `action` completes the sentence
 * "Cannot …", e.g. `open TUN device "pc0"`. Reads errno unless one is given.
 */
export function syscallError(call: string, action: string, errno = lastErrno()): SyscallError {
  let text = `error ${errno}`;
  try {
    const p = libc().strerror(errno);
    if (p) text = Deno.UnsafePointerView.getCString(p);
  } catch { /* keep the number */ }
  text = text.charAt(0).toLowerCase() + text.slice(1);
  // Permission errors on network objects have one usual cause; say it.
  const hint = (errnoName(errno) === "EPERM" || errnoName(errno) === "EACCES") &&
      /TUN|socket|route|address/i.test(action)
    ? " — run as root or grant CAP_NET_ADMIN"
    : "";
  return new SyscallError(call, errno, `Cannot ${action}: ${text} (${errnoName(errno)})${hint}`);
}
