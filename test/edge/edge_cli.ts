/** The edge's CLI in a process of its own, for tests of what it prints and exits with. */

/** `portcullis edge key create` for `dataDir` (public host edge.test) with `extra` flags. */
export function keyCreate(dataDir: string, extra: string[]): Promise<Deno.CommandOutput> {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../../main.ts", import.meta.url).pathname,
      "edge",
      "key",
      "create",
      "--data-dir",
      dataDir,
      "--public-host",
      "edge.test",
      ...extra,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
}
