/**
 * A shell script that runs a command in a private mount namespace whose
 * trust stores (/etc/ssl/certs and /usr/local/share/ca-certificates) are
 * tmpfs copies of the machine's: whatever update-ca-certificates or the
 * connector installs there is gone with the namespace, and the machine's
 * own trust is never touched. Run it with `unshare -m --propagation private
 * sh -c SCRIPT`; it writes its pid (the command's, after exec) to `pidFile`
 * so `nsenter -t PID -m` can look at the same stores.
 */
export function privateTrustScript(copyDir: string, cmd: string[], pidFile?: string): string {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  return [
    "set -e",
    `T=${q(copyDir)}`,
    'mkdir -p "$T/etc" "$T/local"',
    'cp -a /etc/ssl/certs/. "$T/etc/"',
    'cp -a /usr/local/share/ca-certificates/. "$T/local/"',
    'mount -t tmpfs tmpfs /etc/ssl/certs && cp -a "$T/etc/." /etc/ssl/certs/',
    'mount -t tmpfs tmpfs /usr/local/share/ca-certificates && cp -a "$T/local/." /usr/local/share/ca-certificates/',
    ...(pidFile ? [`echo $$ > ${q(pidFile)}`] : []),
    `exec ${cmd.map(q).join(" ")}`,
  ].join("\n");
}
