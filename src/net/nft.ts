/**
 * nftables through `nft -f -`: a whole table is written as one script, so a
 * rule set is applied atomically (all or nothing), and replaced by deleting
 * and re-creating the table in the same transaction.
 */
import { InputError } from "../errors.ts";
import { tiedCommand } from "./tied_command.ts";

/** Applies an nft script; throws with nft's own message when it is refused. */
export async function nftApply(script: string): Promise<void> {
  const p = tiedCommand("nft", { args: ["-f", "-"], stdin: "piped", stderr: "piped" }).spawn();
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode(script));
  await w.close();
  const out = await p.output();
  if (out.code !== 0) {
    throw new InputError(
      "nft_failed",
      `Cannot apply nftables rules: ${new TextDecoder().decode(out.stderr).trim()}`,
      500,
    );
  }
}

/** Script prefix that makes sure `family name` exists and is then empty (idempotent replace). */
export function nftReset(family: "ip" | "ip6" | "inet", name: string): string {
  return `table ${family} ${name}\ndelete table ${family} ${name}\n`;
}
