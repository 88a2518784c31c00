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

/**
 * The table `family name` as `nft list table` prints it (rules in a stable
 * text form, without handles), or null when the kernel has no such table.
 * Other failures (no permission, no nft) throw.
 */
export async function nftListTable(
  family: "ip" | "ip6" | "inet",
  name: string,
): Promise<string | null> {
  const out = await tiedCommand("nft", {
    args: ["list", "table", family, name],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code === 0) return new TextDecoder().decode(out.stdout);
  const err = new TextDecoder().decode(out.stderr).trim();
  if (/No such file or directory/i.test(err)) return null;
  throw new InputError("nft_failed", `Cannot list nftables table ${family} ${name}: ${err}`, 500);
}
