/**
 * Opens libcrypto once, on first use, so importing the protocol costs
 * nothing on hosts that never run a tunnel.
 */
import { libcryptoSymbols } from "../../ffi/libcrypto.ts";

/** The opened libcrypto symbols. */
export type LibCrypto = Deno.DynamicLibrary<typeof libcryptoSymbols>["symbols"];

let lib: Deno.DynamicLibrary<typeof libcryptoSymbols> | undefined;

/** Returns libcrypto's symbols, opening libcrypto.so.3 on the first call. */
export function libcrypto(): LibCrypto {
  if (!lib) {
    try {
      lib = Deno.dlopen("libcrypto.so.3", libcryptoSymbols);
    } catch (err) {
      throw new Error(
        `Cannot open OpenSSL library "libcrypto.so.3": ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  return lib.symbols;
}
