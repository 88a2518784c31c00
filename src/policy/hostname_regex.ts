/**
 * The client-to-client host-name pattern, evaluated with RE2 (`re2js`): a
 * linear-time engine, so no pattern an admin types can make matching a
 * device's host name take more than microseconds. V8's backtracking RegExp
 * needs exponential time for patterns such as `^(a|aa)+$` against a long
 * name, which froze the whole edge (control and data plane) for tens of
 * seconds. RE2 syntax has no back-references or look-arounds; patterns that
 * use them are refused when saved, with the parser's reason.
 */
import { RE2JS } from "re2js";
import { InputError } from "../errors.ts";

/** Longest hostname regex accepted. */
export const MAX_REGEX_LENGTH = 256;
/** Longest host name ever matched (a DNS name has at most 253 characters). */
export const MAX_HOSTNAME_LENGTH = 253;

/** A compiled host-name pattern. */
export interface HostnameMatcher {
  /** The pattern's source text. */
  readonly source: string;
  /** True when `name` (at most 253 characters, else false) matches, case-insensitively. */
  test(name: string): boolean;
}

/**
 * Compiles an admin's host-name regex (case-insensitive, unanchored like
 * RegExp.test unless the pattern anchors itself); throws an InputError
 * naming the problem when it is too long or not valid RE2 syntax.
 */
export function compileHostnameRegex(source: string): HostnameMatcher {
  if (source.length > MAX_REGEX_LENGTH) {
    throw new InputError(
      "invalid_request",
      `Invalid request: hostnameRegex: longer than ${MAX_REGEX_LENGTH} characters`,
    );
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(source, RE2JS.CASE_INSENSITIVE);
  } catch (err) {
    throw new InputError(
      "invalid_request",
      `Invalid request: hostnameRegex: ${(err as Error).message}`,
    );
  }
  return {
    source,
    test: (name) => name.length <= MAX_HOSTNAME_LENGTH && re.matcher(name).find(),
  };
}
