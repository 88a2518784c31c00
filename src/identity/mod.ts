/**
 * Identity: users, password hashing, TOTP, console sessions, login rate
 * limiting and device credentials.
 */
export * from "./password.ts";
export * from "./totp.ts";
export * from "./secrets.ts";
export * from "./sessions.ts";
export * from "./rate_limit.ts";
export * from "./users.ts";
