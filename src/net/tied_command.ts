/**
 * Child processes that die with us. A helper we spawn (`ip monitor`, an
 * `ip -batch`, `nft -f -`) must not outlive the connector: after a `kill -9`
 * a surviving `ip monitor` keeps running forever, and a half-fed `nft` may
 * hang on a pipe nobody closes. The kernel's PR_SET_PDEATHSIG is the one
 * mechanism that fires even when the parent gets SIGKILL, so children are
 * started through util-linux's `setpriv --pdeathsig KILL`, which sets it on
 * itself and then execs the real program (the flag survives execve).
 *
 * PDEATHSIG follows the *thread* that forked; Deno spawns from the main JS
 * thread, which lives as long as the process, so it fires exactly when the
 * process dies. Where setpriv is missing (not Linux, a trimmed image) the
 * program runs as is, and that is said once in the log.
 */
import { logger } from "../log.ts";

const log = logger("net.child");

/** Where setpriv lives on Debian (util-linux); looked up once. */
const SETPRIV_PATHS = ["/usr/bin/setpriv", "/bin/setpriv"];

let setpriv: string | null | undefined;

/** The setpriv binary, or null when this system has none. */
export function setprivPath(): string | null {
  if (setpriv !== undefined) return setpriv;
  setpriv = null;
  if (Deno.build.os === "linux") {
    for (const p of SETPRIV_PATHS) {
      try {
        if (Deno.statSync(p).isFile) {
          setpriv = p;
          break;
        }
      } catch {
        // Not here.
      }
    }
    if (!setpriv) log.warn("setpriv (util-linux) not found; helper processes may outlive us");
  }
  return setpriv;
}

/** `program` + `args` rewritten so the kernel kills the child when we die. */
export function tiedArgv(program: string, args: string[]): { program: string; args: string[] } {
  const sp = setprivPath();
  if (!sp) return { program, args };
  return { program: sp, args: ["--pdeathsig", "KILL", "--", program, ...args] };
}

/** A Deno.Command for `program` whose process receives SIGKILL when this process dies. */
export function tiedCommand(program: string, opts: Deno.CommandOptions = {}): Deno.Command {
  const t = tiedArgv(program, opts.args ? [...opts.args].map(String) : []);
  return new Deno.Command(t.program, { ...opts, args: t.args });
}
