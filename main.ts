/**
 * Portcullis — composition root. Parses the command, builds the role and
 * starts it. Nothing else lives here: each command's work is in src/.
 *
 * Commands load their modules lazily so `portcullis wg show` does not pay for
 * the web framework and the database.
 */
import { PortcullisError } from "./src/errors.ts";
import { answerAfterBody, type ServeFn } from "./src/serve.ts";
import { VERSION } from "./src/version.ts";

const USAGE = `Portcullis ${VERSION} — zero-trust edge appliance

Usage:
  portcullis edge [--config FILE] [--data-dir DIR] [--api-listen H:P] [--tunnel-port N]
                  [--console-listen H:P] [--bootstrap-listen H:P] [--public-host HOST] ...
                                         run the service edge (embedded defaults; see README)
  portcullis edge key create [--reusable] [--user] [--expires 24h|7d|never] [--group NAME]
                             [--key-file FILE]
                                         make an enrolment key (printed once, or written
                                         to a new mode-0600 FILE)
  portcullis connect [--key-file FILE|-] [--data-dir DIR] [--console-listen H:P]
                     [--hostname NAME] [--gateway] [--lan-dns-listen H:P] [--no-dns]
                     [--strict-enforcement] [--tun-interface NAME] [--config FILE]
                     [--email USER@DOMAIN] [--release-key FILE.pub] [--program PATH]
                                         enrol (first run) with the key in FILE, on standard
                                         input (-) or in PORTCULLIS_ENROLLMENT_KEY, and run
                                         the connector; a key as an argument works but
                                         shows in ps (warned)
  portcullis trust remove [--data-dir DIR]
                                         uninstall: remove the SSL inspection CA the connector
                                         installed (system store and NSS databases)
  portcullis check [--url URL]           am I protected? (exit 0 yes, 1 no, 2 unknown)
  portcullis ctl disable|enable|logout|exit|restart|uninstall|check-update [--console H:P]
                                         a connector action; asks the password the policy sets
  portcullis uninstall [--yes] [--data-dir DIR] [--tun-interface NAME] [--root DIR]
                                         remove the connector: service unit, trusted CA, TUN,
                                         nftables, resolv.conf changes, data (asks the
                                         uninstall password the policy sets)
  portcullis doctor [--json] [--console H:P]
                                         walk the chain, one verdict per hop with the fix
                                         (exit 0 healthy, 1 a fault found, 2 could not tell)
  portcullis lab up [--edges 2]|down|status
                                         the whole system in network namespaces, in a minute
                                         (--edges 2: two regions on one PostgreSQL)
  portcullis wg up FILE [--name IFACE]   bring up a WireGuard interface from a wg-quick file
  portcullis wg show [IFACE]             show WireGuard interfaces (Portcullis or wireguard-go)
  portcullis wg genkey | pubkey          make a private key / derive a public key from stdin
  portcullis dlp install-cups-backend [--console URL]
                                         hook print jobs into endpoint DLP (CUPS installed)
  portcullis cups-backend ...            the CUPS backend itself (CUPS runs it)
  portcullis service install|uninstall [edge|connector] [--dry-run] [--data-dir DIR] [-- ARGS]
                                         write (and enable) or remove the systemd unit
                                         portcullis-<role>.service; --dry-run prints it
  portcullis release keygen --out FILE | sign --key FILE --version V --program PATH --out BUNDLE
                   | verify --public-key FILE.pub BUNDLE
                                         connector releases: make the release key (private half
                                         mode 0600, kept off the edges), sign a program, check
  portcullis setup                       install the Debian packages the appliance needs (root)
  portcullis version                     print the version
  portcullis help                        this text
`;

type Handler = (args: string[]) => Promise<number>;

/**
 * The one place that listens for HTTP: roles get this function instead of
 * Deno.serve. Every listener answers only after the request body is in, so
 * refusals reach HTTP/2 clients intact (src/serve.ts answerAfterBody).
 */
const serve: ServeFn = (o, handler) =>
  Deno.serve(
    o.cert && o.key
      ? { hostname: o.hostname, port: o.port, cert: o.cert, key: o.key, onListen: o.onListen }
      : { hostname: o.hostname, port: o.port, onListen: o.onListen },
    answerAfterBody(handler),
  );

const commands: Record<string, Handler> = {
  async "cups-backend"(args) {
    const { cupsBackendCommand } = await import("./src/connector/cups_cli.ts");
    return cupsBackendCommand(args);
  },
  async dlp(args) {
    const { installCupsBackendCommand } = await import("./src/connector/cups_cli.ts");
    if (args[0] !== "install-cups-backend") {
      console.error('Unknown dlp command; try "portcullis dlp install-cups-backend"');
      return 2;
    }
    return installCupsBackendCommand(args.slice(1));
  },
  async edge(args) {
    const { edgeCommand } = await import("./src/edge/cli.ts");
    const { edgeApps } = await import("./src/http/edge_apps.ts");
    const { edgeConsoleApp } = await import("./src/http/console/mod.ts");
    const { addLogSink, RingSink } = await import("./src/log.ts");
    // Recent records for the diagnostics bundle (secrets are stripped on export).
    const logs = new RingSink(5000);
    addLogSink(logs);
    return edgeCommand(args, {
      serve,
      apps: edgeApps({
        console: (cp, api, _tunnel, config) =>
          edgeConsoleApp(cp, api, { productVersion: VERSION, allowedHosts: config.consoleHosts }),
        productVersion: VERSION,
        logs: () => logs.records(),
      }),
    });
  },
  async connect(args) {
    const { connectCommand } = await import("./src/connector/cli.ts");
    const { httpEdgeApi } = await import("./src/http/edge_client.ts");
    const { connectorListenerApp } = await import("./src/http/console/mod.ts");
    const { addLogSink, RingSink } = await import("./src/log.ts");
    // Keep records from the very start, so exported bundles include start-up.
    const logs = new RingSink(5000);
    addLogSink(logs);
    return connectCommand(args, {
      serve,
      edge: httpEdgeApi(),
      app: (parts) => connectorListenerApp(parts, { logs }),
    });
  },
  async trust(args) {
    const { trustCommand } = await import("./src/connector/trust_cli.ts");
    return trustCommand(args);
  },
  async check(args) {
    const { checkCommand } = await import("./src/connector/cli.ts");
    return checkCommand(args);
  },
  async ctl(args) {
    const { ctlCommand } = await import("./src/connector/ctl_cli.ts");
    return ctlCommand(args);
  },
  async uninstall(args) {
    const { uninstallCommand } = await import("./src/connector/uninstall_cli.ts");
    return uninstallCommand(args);
  },
  async doctor(args) {
    const { doctorCommand } = await import("./src/diag/doctor/cli.ts");
    return doctorCommand(args);
  },
  async lab(args) {
    const { labCommand } = await import("./src/lab/cli.ts");
    return labCommand(args, serve);
  },
  async wg(args) {
    const { wgCommand } = await import("./src/dataplane/wg_cli.ts");
    return wgCommand(args);
  },
  async release(args) {
    const { releaseCommand } = await import("./src/fleet/release_cli.ts");
    return releaseCommand(args);
  },
  async service(args) {
    const { serviceCommand } = await import("./src/service_unit.ts");
    return serviceCommand(args);
  },
  async setup() {
    const { ensurePackages, RUNTIME_PACKAGES } = await import("./src/install.ts");
    const missing = await ensurePackages(RUNTIME_PACKAGES);
    if (missing.length) {
      console.error(
        `Missing Debian packages: ${missing.join(", ")} (run as root to install them).`,
      );
      return 1;
    }
    return 0;
  },
  version() {
    console.log(VERSION);
    return Promise.resolve(0);
  },
  help() {
    console.log(USAGE);
    return Promise.resolve(0);
  },
};

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "--help" || cmd === "-h") {
    console.log(USAGE);
    return cmd ? 0 : 2;
  }
  const handler = commands[cmd];
  if (!handler) {
    console.error(`Unknown command "${cmd}". Run "portcullis help" for the list.`);
    return 2;
  }
  try {
    return await handler(rest);
  } catch (e) {
    if (e instanceof PortcullisError) {
      console.error(`Error: ${e.message}`);
      return e.status >= 400 && e.status < 500 ? 2 : 1;
    }
    throw e;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
