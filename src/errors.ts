/**
 * Typed errors shared by every layer.
 *
 * Errors carry a machine-readable `code` (used by the REST API and the CLI)
 * and a sentence-case message naming the action and the value, e.g.
 * `Cannot open TUN device "pc0": operation not permitted`.
 */

/** Base class for every error Portcullis raises on purpose. */
export class PortcullisError extends Error {
  /** Machine-readable code, stable across releases (snake_case). */
  readonly code: string;
  /** HTTP status a REST handler should answer with. */
  readonly status: number;
  constructor(code: string, message: string, status = 500, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }
}

/** Input from a user, a file or a peer was not acceptable (4xx). */
export class InputError extends PortcullisError {
  constructor(code: string, message: string, status = 400, options?: ErrorOptions) {
    super(code, message, status, options);
  }
}

/** A system call failed; `call` names it and `errno` holds the raw value. */
export class SyscallError extends PortcullisError {
  readonly call: string;
  readonly errno: number;
  constructor(call: string, errno: number, message: string) {
    super("syscall_failed", message, 500);
    this.call = call;
    this.errno = errno;
  }
}

/** A named resource does not exist (404). */
export class NotFoundError extends PortcullisError {
  constructor(code: string, message: string) {
    super(code, message, 404);
  }
}
