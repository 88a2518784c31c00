/**
 * `portcullis wg …`: the command-line face of standalone mode.
 */
import { parseCliArgs } from "../cli_args.ts";
import { encodeKey, generatePrivateKey, parseKey, publicKeyOf } from "../wireguard/mod.ts";
import { formatInterface, listInterfaces, showInterface, wgUp } from "./standalone.ts";
import { InputError } from "../errors.ts";

/** Runs `wg up|show|genkey|pubkey`; returns the exit code. */
export async function wgCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "up": {
      const { values, positionals } = parseCliArgs(
        rest,
        { name: { type: "string" } },
        "portcullis wg up",
      );
      if (positionals.length !== 1) {
        throw new InputError("usage", "Usage: portcullis wg up FILE [--name IFACE]");
      }
      // Test knobs: shorten the rekey interval and the UDP probe interval.
      const rekey = Deno.env.get("PORTCULLIS_WG_REKEY_AFTER_SEC");
      const probe = Deno.env.get("PORTCULLIS_UDP_PROBE_SEC");
      await wgUp(positionals[0], {
        name: values.name as string | undefined,
        rekeyAfterMs: rekey ? Number(rekey) * 1000 : undefined,
        udpProbeMs: probe ? Math.max(1, Number(probe)) * 1000 : undefined,
      });
      return 0;
    }
    case "show": {
      const names = rest.length ? rest : await listInterfaces();
      if (names.length === 0) {
        console.log("No WireGuard interfaces are up.");
        return 0;
      }
      const blocks: string[] = [];
      for (const n of names) blocks.push(formatInterface(await showInterface(n)));
      console.log(blocks.join("\n\n"));
      return 0;
    }
    case "genkey":
      console.log(encodeKey(generatePrivateKey()));
      return 0;
    case "pubkey": {
      const text = (await new Response(Deno.stdin.readable).text()).trim();
      console.log(encodeKey(publicKeyOf(parseKey(text, "private key"))));
      return 0;
    }
    default:
      throw new InputError(
        "usage",
        `Unknown wg subcommand "${sub ?? ""}": expected up, show, genkey or pubkey`,
      );
  }
}
