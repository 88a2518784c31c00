/**
 * `portcullis trust remove [--data-dir DIR]`: the uninstall step for the SSL
 * inspection CA — takes out of the system store and the NSS databases
 * exactly what the connector with that data directory installed (its
 * record), and says what it did.
 */
import { parseCliArgs } from "../cli_args.ts";
import { InputError } from "../errors.ts";
import { SystemTrustStore } from "./trust_store.ts";

/** Runs `portcullis trust …`; returns the exit code. */
export async function trustCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== "remove") {
    throw new InputError(
      "usage",
      `Unknown trust command "${sub ?? ""}"; try "portcullis trust remove"`,
    );
  }
  const { values } = parseCliArgs(
    rest,
    { "data-dir": { type: "string" } },
    "portcullis trust remove",
  );
  const dataDir = (values["data-dir"] as string | undefined) ?? "./data/connector";
  const store = new SystemTrustStore({ dataDir });
  const cur = await store.installed();
  if (!cur) {
    console.log(`No inspection CA was installed by the connector in "${dataDir}".`);
    return 0;
  }
  await store.remove();
  console.log(
    `Removed the inspection CA ${cur.sha256.slice(0, 16)}… (${cur.file}${
      cur.nss.length ? `, NSS: ${cur.nss.join(", ")}` : ""
    }).`,
  );
  return 0;
}
