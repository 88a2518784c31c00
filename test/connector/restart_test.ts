/** How "Restart service" restarts: systemd unit detection, the successor's argv and env. */
import assert from "node:assert/strict";
import { setLogSinks } from "../../src/log.ts";
import {
  RESTART_WAIT_ENV,
  restartPlan,
  restartUnit,
  systemdUnit,
  withoutKey,
} from "../../src/connector/restart.ts";

setLogSinks([]);

Deno.test("systemdUnit: from /proc/self/cgroup, only under systemd", () => {
  const cg = "0::/system.slice/portcullis-connector.service\n";
  const cases: [Record<string, string>, string, string | null][] = [
    [{ INVOCATION_ID: "abc" }, cg, "portcullis-connector.service"],
    [
      { NOTIFY_SOCKET: "/run/x" },
      "0::/system.slice/pc-edge@lab.service/sub\n",
      "pc-edge@lab.service",
    ],
    [{ INVOCATION_ID: "abc" }, "0::/user.slice\n", "portcullis-connector.service"],
    [{}, cg, null],
  ];
  for (const [env, text, want] of cases) assert.equal(systemdUnit(env, text), want);
});

Deno.test("withoutKey: a one-time enrolment key is not passed on", () => {
  const cases: [string[], string[]][] = [
    [["run", "-A", "main.ts", "connect", "--key-file", "/k", "--gateway"], [
      "run",
      "-A",
      "main.ts",
      "connect",
      "--gateway",
    ]],
    [["connect", "--key-file=/k"], ["connect"]],
    [["connect", "pc1.abc.def"], ["connect"]],
    [["connect", "--data-dir", "/d"], ["connect", "--data-dir", "/d"]],
  ];
  for (const [argv, want] of cases) assert.deepEqual(withoutKey(argv), want);
});

Deno.test("restartPlan: re-exec with the same argv, env and cwd, or the systemd unit", () => {
  const files: Record<string, string> = {
    "/proc/self/cgroup": "0::/init.scope\n",
    "/proc/self/cmdline": "deno\0run\0-A\0/x/main.ts\0connect\0--key-file\0/k\0--no-dns\0",
  };
  const read = (p: string) => files[p];
  const plan = restartPlan({ PATH: "/bin", PORTCULLIS_ENROLLMENT_KEY: "pc1.x" }, read);
  assert.equal(plan.kind, "reexec");
  if (plan.kind !== "reexec") return;
  assert.equal(plan.program, Deno.execPath());
  assert.deepEqual(plan.args, ["run", "-A", "/x/main.ts", "connect", "--no-dns"]);
  assert.equal(plan.env.PATH, "/bin");
  assert.equal(plan.env[RESTART_WAIT_ENV], String(Deno.pid));
  assert.equal(plan.env.PORTCULLIS_ENROLLMENT_KEY, undefined);
  assert.equal(plan.cwd, Deno.cwd());

  files["/proc/self/cgroup"] = "0::/system.slice/portcullis-connector.service\n";
  assert.deepEqual(restartPlan({ INVOCATION_ID: "1" }, read), {
    kind: "systemd",
    unit: "portcullis-connector.service",
  });
});

Deno.test({
  name: "restartUnit: asks systemctl to restart the unit without waiting; a refusal is named",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pcsysctl" });
    const path = Deno.env.get("PATH") ?? "";
    try {
      // A stand-in systemctl first on PATH: records its arguments, fails for "bad.service".
      await Deno.writeTextFile(
        `${dir}/systemctl`,
        `#!/bin/sh\necho "$@" >> "${dir}/calls"\ncase "$*" in *bad.service*) echo "Unit bad.service not found." >&2; exit 5;; esac\n`,
        { mode: 0o755 },
      );
      Deno.env.set("PATH", `${dir}:${path}`);
      await restartUnit("portcullis-connector.service");
      assert.equal(
        (await Deno.readTextFile(`${dir}/calls`)).trim(),
        "--no-block restart portcullis-connector.service",
      );
      await assert.rejects(
        restartUnit("bad.service"),
        /Cannot restart unit "bad\.service": Unit bad\.service not found\./,
      );
    } finally {
      Deno.env.set("PATH", path);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
