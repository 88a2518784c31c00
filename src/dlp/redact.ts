/**
 * Redacted samples: what an incident, a log line or the console may show of
 * a match. The raw value never leaves the scanner; these functions keep just
 * enough to recognise the kind of data and tell two findings apart (a card's
 * first and last four digits, an SSN's serial, an e-mail's first letter and
 * domain), and mask the rest with "*".
 */

/** Masks a card number: first 4 and last 4 digits, the rest as "*" in groups of four. */
export function redactCard(digits: string): string {
  const middle = "*".repeat(Math.max(0, digits.length - 8)).replace(/(.{4})(?=.)/g, "$1 ");
  return `${digits.slice(0, 4)} ${middle} ${digits.slice(-4)}`;
}

/** Masks an IBAN: country and check digits, then "*", then the last 2 characters. */
export function redactIban(iban: string): string {
  const masked = iban.slice(0, 4) + "*".repeat(Math.max(0, iban.length - 6)) + iban.slice(-2);
  return masked.replace(/(.{4})(?=.)/g, "$1 ");
}

/** Masks a US SSN to its last four digits ("***-**-6789"). */
export function redactSsn(digits: string): string {
  return `***-**-${digits.slice(-4)}`;
}

/** Masks an e-mail address: first letter of the local part, the domain kept. */
export function redactEmail(address: string): string {
  const at = address.lastIndexOf("@");
  const local = address.slice(0, at);
  return `${local.slice(0, 1)}${"*".repeat(Math.min(8, Math.max(3, local.length - 1)))}${
    address.slice(at)
  }`;
}

/**
 * Masks any other finding (a custom pattern, a keyword, an EDM cell): the
 * first character of each word, the rest as "*" (at most 12 per word, so a
 * long value does not reveal its length exactly), digits always masked.
 */
export function redactGeneric(value: string): string {
  const words = value.trim().split(/\s+/).slice(0, 6);
  return words.map((w) => {
    const chars = [...w];
    const first = /\d/.test(chars[0] ?? "") ? "*" : (chars[0] ?? "");
    return first + "*".repeat(Math.min(12, Math.max(2, chars.length - 1)));
  }).join(" ");
}

/**
 * True when `sample` could be a raw value rather than one of our redactions:
 * a run of five or more digits, or no mask character at all. The edge checks
 * samples that devices send with it, so a buggy or hostile connector cannot
 * plant raw values in the incident store.
 */
export function looksUnredacted(sample: string): boolean {
  return /\d{5}/.test(sample.replace(/[\s-]/g, "").replace(/\*+/g, " ")) || !sample.includes("*");
}
