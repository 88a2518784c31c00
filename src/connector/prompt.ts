/**
 * Asking the person at the terminal: a password without echo (raw mode, so
 * it never shows on screen or in a scrollback), or, when standard input is
 * not a terminal (a script), the first line of standard input. Never from an
 * argument or the environment, where `ps` and /proc would show it.
 */
import { InputError } from "../errors.ts";

const MAX_LINE = 4096;

/** The first line of standard input (a script piping the answer in). */
async function firstLine(): Promise<string> {
  const buf = new Uint8Array(MAX_LINE + 1);
  let n = 0;
  while (n < buf.length) {
    const r = await Deno.stdin.read(buf.subarray(n));
    if (r === null) break;
    n += r;
    if (buf.subarray(0, n).includes(10)) break;
  }
  const text = new TextDecoder().decode(buf.subarray(0, n));
  const nl = text.indexOf("\n");
  if (nl < 0 && n > MAX_LINE) {
    throw new InputError(
      "input_too_long",
      `The answer on standard input is longer than ${MAX_LINE} bytes`,
    );
  }
  return (nl < 0 ? text : text.slice(0, nl)).replace(/\r$/, "");
}

/** Reads one line from the terminal with echo off. */
async function silentLine(): Promise<string> {
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  const one = new Uint8Array(1);
  try {
    while (bytes.length <= MAX_LINE) {
      const r = await Deno.stdin.read(one);
      if (r === null) break;
      const b = one[0];
      if (b === 13 || b === 10) break;
      if (b === 3) throw new InputError("cancelled", "Cancelled");
      if (b === 127 || b === 8) bytes.pop();
      else bytes.push(b);
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(new TextEncoder().encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** Asks for a secret: `question` on stderr and a silent line at a terminal, else stdin's first line. */
export async function askSecret(question: string): Promise<string> {
  if (!Deno.stdin.isTerminal()) return await firstLine();
  await Deno.stderr.write(new TextEncoder().encode(question));
  return await silentLine();
}

/** Asks a yes/no question at the terminal; false when standard input is not one. */
export async function askYes(question: string): Promise<boolean> {
  if (!Deno.stdin.isTerminal()) return false;
  await Deno.stderr.write(new TextEncoder().encode(question));
  const answer = await firstLine();
  return /^\s*y(es)?\s*$/i.test(answer);
}
