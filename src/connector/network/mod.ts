/**
 * Network awareness for the connector (issue 6): facts about the current
 * network, a change monitor, the captive-portal probe and its timing policy,
 * and edge reachability with fail-open / fail-closed. Mechanisms only; the
 * policy evaluators live in src/policy and the engine wires both together.
 */
export * from "./facts.ts";
export * from "./monitor.ts";
export * from "./captive.ts";
export * from "./captive_controller.ts";
export * from "./reachability.ts";
