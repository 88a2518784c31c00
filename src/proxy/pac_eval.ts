/**
 * Evaluates PAC files in a sandbox, for the doctor and "where would this URL
 * go?": `pac-resolver` on `quickjs-wasi`, a fresh QuickJS VM per evaluation
 * (nothing a PAC file does survives into the next one), a time limit (the
 * VM's interrupt handler) and a memory limit (its allocator), and our own
 * `myIpAddress` and `dnsResolve`, so a PAC file never reaches the network
 * or the host. A PAC file that does not parse, throws, loops, recurses
 * forever or returns something that is not a proxy list is reported with a
 * sentence (and the line, where QuickJS or the parser gives one); nothing
 * it does can crash the caller.
 */
import { createPacResolver } from "pac-resolver";
import { QuickJS } from "quickjs-wasi";

/** Limits and the host facts the PAC file may ask for. */
export interface PacEvalOptions {
  /** What myIpAddress() returns (default 127.0.0.1). */
  myIp?: string;
  /** dnsResolve(host): an address or null (default: IPv4 literals only). */
  resolve?: (host: string) => string | null;
  /** Milliseconds of JavaScript per evaluation (default 1000). */
  timeoutMs?: number;
  /** Bytes the VM may allocate (default 16 MiB). */
  memoryBytes?: number;
}

/** The outcome of one evaluation. */
export type PacOutcome =
  | { ok: true; result: string }
  | { ok: false; error: string; line: number | null };

const ENTRY =
  /^(?:DIRECT|(?:PROXY|HTTP|HTTPS|SOCKS|SOCKS4|SOCKS5) [A-Za-z0-9.\-_[\]:]{1,260}:\d{1,5})$/i;

/** True when `s` is a proxy list as FindProxyForURL returns it ("PROXY a:1; DIRECT"). */
export function isProxyList(s: string): boolean {
  const parts = s.split(";").map((p) => p.trim()).filter(Boolean);
  return parts.length > 0 && parts.length <= 32 && parts.every((p) => ENTRY.test(p));
}

const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

function lineOf(e: Error): number | null {
  const m = /proxy\.pac:(\d+)/.exec(e.stack ?? "") ?? /^(?:Error: )?Line (\d+):/.exec(e.message);
  return m ? Number(m[1]) : null;
}

/** Runs FindProxyForURL(url, host) of `pac` once, in a fresh VM. */
export async function evaluatePac(
  pac: string,
  url: string,
  o: PacEvalOptions = {},
): Promise<PacOutcome> {
  const timeoutMs = o.timeoutMs ?? 1000;
  let deadline = Number.POSITIVE_INFINITY;
  let vm: QuickJS;
  try {
    vm = await QuickJS.create({
      memoryLimit: o.memoryBytes ?? 16 * 1024 * 1024,
      interruptHandler: () => Date.now() > deadline,
    });
  } catch (e) {
    return {
      ok: false,
      error: `Cannot start the PAC sandbox: ${(e as Error).message}`,
      line: null,
    };
  }
  try {
    const resolve = o.resolve ?? ((h: string) => (IPV4.test(h) ? h : null));
    deadline = Date.now() + timeoutMs;
    const find = createPacResolver(vm, pac, {
      filename: "proxy.pac",
      sandbox: {
        myIpAddress: () => o.myIp ?? "127.0.0.1",
        dnsResolve: (h: string) => resolve(String(h)),
        isResolvable: (h: string) => resolve(String(h)) !== null,
      },
    } as never);
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return {
        ok: false,
        error: `Cannot evaluate the PAC file for "${url.slice(0, 200)}": not a URL`,
        line: null,
      };
    }
    const out = await find(u.href, u.hostname);
    if (typeof out !== "string" || !isProxyList(out)) {
      return {
        ok: false,
        error: `The PAC file returned ${
          JSON.stringify(String(out)).slice(0, 100)
        }, which is not a proxy list`,
        line: null,
      };
    }
    return { ok: true, result: out.split(";").map((p) => p.trim()).filter(Boolean).join("; ") };
  } catch (e) {
    const err = e as Error;
    const msg = /interrupted/.test(err.message)
      ? `The PAC file ran longer than ${timeoutMs} ms and was stopped`
      : /out of memory/i.test(err.message)
      ? "The PAC file used more memory than allowed and was stopped"
      : /call stack/i.test(err.message)
      ? "The PAC file recursed too deep and was stopped"
      : `The PAC file failed: ${err.message.split("\n")[0].slice(0, 200)}`;
    return { ok: false, error: msg, line: lineOf(err) };
  } finally {
    try {
      (vm as unknown as { dispose?: () => void }).dispose?.();
    } catch { /* already gone */ }
  }
}
