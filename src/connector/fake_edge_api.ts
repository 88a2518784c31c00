/**
 * A fake of the edge API (`EdgeApi`, edge_api.ts) for engine tests: answers
 * from fields the test sets, records every call, and lets the test announce
 * policy versions on the "stream" or make any call fail with a chosen error.
 * The real client is src/http/edge_client.ts.
 */
import type {
  C2cRegistration,
  EnrollRequest,
  EnrollResponse,
  HeartbeatReport,
  PostureReport,
  PostureVerdict,
  UpdateOffer,
  UpdateReport,
} from "../control/mod.ts";
import type { EnrollmentKeyPayload } from "../control/enrollment_key.ts";
import type { PolicyBundle } from "../policy/types.ts";
import type { EdgeApi, EdgeApiFactory, FollowOptions, PolicyFetch } from "./edge_api.ts";

/** Names of the calls a test can make fail. */
export type FakeEdgeCall =
  | "enroll"
  | "fetchPolicy"
  | "reportPosture"
  | "heartbeat"
  | "registerC2c"
  | "supportRequest"
  | "followPolicy";

/** A scripted edge API client. */
export class FakeEdgeApi implements EdgeApi {
  /** Every call, in order ("heartbeat", "fetchPolicy:<etag>", …). */
  calls: string[] = [];
  enrolls: EnrollRequest[] = [];
  heartbeats: HeartbeatReport[] = [];
  postures: PostureReport[] = [];
  /** What reportPosture answers. */
  postureVerdict: PostureVerdict | null = null;
  /** The policy `fetchPolicy` serves (unchanged when the caller's ETag is `"<version>"`). */
  policy: PolicyBundle | null = null;
  /** What `enroll` answers (the policy defaults to `policy`). */
  enrollResponse: Omit<EnrollResponse, "policy"> & { policy?: PolicyBundle } = {
    deviceId: "dev_fake",
    credential: "cred-fake",
    address: "100.64.0.2",
    network: "100.64.0.0/16",
    edgeAddress: "100.64.0.1",
    edgePublicKey: "A".repeat(43) + "=",
    endpoints: [{ transport: "udp", host: "192.0.2.1", port: 443 }],
    user: null,
    group: null,
    serverTime: new Date(0).toISOString(),
  };
  /** What `registerC2c` answers. */
  c2c: Omit<C2cRegistration, "fqdn"> = { valid: true, reason: "", serverTime: "" };
  /** Calls that fail, with the error they throw. */
  failures = new Map<FakeEdgeCall, Error>();
  clockSkewMs: number | null = null;
  credential: string | null = null;
  fingerprintHash: string | null = null;
  closed = false;
  /** What `checkUpdate` answers. */
  updateOffer: UpdateOffer | null = null;
  /** Programs `downloadRelease` serves, by version. */
  programs = new Map<string, Uint8Array>();
  /** Every update report received. */
  updateReports: UpdateReport[] = [];
  /** While true, reportUpdate fails as an unreachable edge would. */
  updateReportsFail = false;
  #streams = new Set<FollowOptions>();

  /** Records the credentials. */
  setCredentials(credential: string | null, fingerprintHash: string | null): void {
    this.credential = credential;
    this.fingerprintHash = fingerprintHash;
  }

  /** Answers `enrollResponse`. */
  enroll(req: EnrollRequest): Promise<EnrollResponse> {
    const err = this.#call("enroll");
    if (err) return Promise.reject(err);
    this.enrolls.push(req);
    const policy = this.enrollResponse.policy ?? this.policy;
    if (!policy) {
      return Promise.reject(new Error("FakeEdgeApi: set policy or enrollResponse.policy"));
    }
    return Promise.resolve({ ...this.enrollResponse, policy });
  }

  /** Serves `policy`, or "unchanged" for its ETag. */
  fetchPolicy(etag: string | null = null): Promise<PolicyFetch> {
    const err = this.#call("fetchPolicy", String(etag));
    if (err) return Promise.reject(err);
    if (!this.policy) return Promise.reject(new Error("FakeEdgeApi: no policy set"));
    const tag = `"${this.policy.version}"`;
    return Promise.resolve(
      etag === tag
        ? { status: "unchanged" }
        : { status: "updated", policy: this.policy, etag: tag },
    );
  }

  /** Records the report. */
  reportPosture(report: PostureReport): Promise<PostureVerdict | null> {
    const err = this.#call("reportPosture");
    if (err) return Promise.reject(err);
    this.postures.push(report);
    return Promise.resolve(this.postureVerdict);
  }

  /** Records the heartbeat. */
  heartbeat(req: HeartbeatReport): Promise<void> {
    const err = this.#call("heartbeat");
    if (err) return Promise.reject(err);
    this.heartbeats.push(req);
    return Promise.resolve();
  }

  /** Answers `c2c` for the name. */
  registerC2c(fqdn: string): Promise<C2cRegistration> {
    const err = this.#call("registerC2c", fqdn);
    if (err) return Promise.reject(err);
    return Promise.resolve({ fqdn, ...this.c2c });
  }

  /** Accepts the upload. */
  supportRequest(message: string): Promise<unknown> {
    const err = this.#call("supportRequest", message);
    if (err) return Promise.reject(err);
    return Promise.resolve({ ok: true });
  }

  /** Holds the "stream" open until the signal aborts; `announce` and `revoke` speak on it. */
  followPolicy(o: FollowOptions): Promise<void> {
    const err = this.#call("followPolicy");
    if (err) return Promise.reject(err);
    this.#streams.add(o);
    o.onConnected?.();
    return new Promise((resolve) => {
      const done = () => {
        this.#streams.delete(o);
        resolve();
      };
      if (o.signal.aborted) done();
      else o.signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Open policy streams. */
  get streams(): number {
    return this.#streams.size;
  }

  /** Announces a policy version on every open stream. */
  announce(version: string): void {
    for (const s of this.#streams) s.onVersion(version);
  }

  /** Announces a revocation ("device_disabled", "device_deleted") on every open stream. */
  revoke(reason: string): void {
    for (const s of this.#streams) s.onRevoked?.(reason);
  }

  /** Marks the client closed. */
  checkUpdate(): Promise<UpdateOffer | null> {
    this.calls.push("checkUpdate");
    return Promise.resolve(this.updateOffer);
  }

  downloadRelease(version: string, maxBytes: number): Promise<Uint8Array> {
    this.calls.push(`downloadRelease:${version}`);
    const p = this.programs.get(version);
    if (!p) return Promise.reject(new Error(`No program for ${version}`));
    return Promise.resolve(p.subarray(0, maxBytes + 1));
  }

  reportUpdate(r: UpdateReport): Promise<void> {
    this.calls.push(`reportUpdate:${r.outcome}`);
    if (this.updateReportsFail) return Promise.reject(new Error("The edge cannot be reached"));
    this.updateReports.push(r);
    return Promise.resolve();
  }

  close(): void {
    this.closed = true;
  }

  /** How many calls of one kind were made. */
  count(name: FakeEdgeCall): number {
    return this.calls.filter((c) => c === name || c.startsWith(`${name}:`)).length;
  }

  /** Records a call; returns the error it must fail with, if any. */
  #call(name: FakeEdgeCall, arg?: string): Error | null {
    this.calls.push(arg === undefined ? name : `${name}:${arg}`);
    return this.failures.get(name) ?? null;
  }
}

/** An EdgeApiFactory over FakeEdgeApi clients: serves `caPem` and records each client it makes. */
export class FakeEdgeApiFactory implements EdgeApiFactory {
  caPem = "-----BEGIN CERTIFICATE-----\nZmFrZQ==\n-----END CERTIFICATE-----\n";
  /** Error `fetchCa` throws, if set. */
  caError: Error | null = null;
  /** Clients made so far, newest last; each is configured by `configure` first. */
  clients: FakeEdgeApi[] = [];
  /** The (apiUrl, caPem) of each client made. */
  made: { apiUrl: string; caPem: string }[] = [];
  /** Sets up each new client (policy, failures) before the engine gets it. */
  configure: (c: FakeEdgeApi) => void = () => {};

  /** Returns `caPem` (or throws `caError`). */
  fetchCa(_p: EnrollmentKeyPayload): Promise<string> {
    return this.caError ? Promise.reject(this.caError) : Promise.resolve(this.caPem);
  }

  /** Makes and records a FakeEdgeApi. */
  client(apiUrl: string, caPem: string): FakeEdgeApi {
    const c = new FakeEdgeApi();
    this.configure(c);
    this.clients.push(c);
    this.made.push({ apiUrl, caPem });
    return c;
  }

  /** The newest client. */
  get last(): FakeEdgeApi | undefined {
    return this.clients[this.clients.length - 1];
  }
}
