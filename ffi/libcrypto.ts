/**
 * OpenSSL libcrypto (libcrypto.so.3) symbol table: ChaCha20-Poly1305 through
 * EVP_CIPHER and X25519 through EVP_PKEY. Symbol table only; the safe wrappers
 * live in src/wireguard/aead.ts and src/wireguard/x25519.ts.
 */

/** libcrypto symbols used by the WireGuard protocol. */
export const libcryptoSymbols = {
  /** EVP_CIPHER_CTX *EVP_CIPHER_CTX_new(void) */
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  /** void EVP_CIPHER_CTX_free(EVP_CIPHER_CTX *ctx) */
  EVP_CIPHER_CTX_free: {
    parameters: [
      "pointer", // EVP_CIPHER_CTX *ctx
    ],
    result: "void",
  },
  /** const EVP_CIPHER *EVP_chacha20_poly1305(void) */
  EVP_chacha20_poly1305: { parameters: [], result: "pointer" },
  /** int EVP_CipherInit_ex(ctx, type, impl, key, iv, enc) */
  EVP_CipherInit_ex: {
    parameters: [
      "pointer", // EVP_CIPHER_CTX *ctx
      "pointer", // const EVP_CIPHER *type (NULL keeps the current cipher)
      "pointer", // ENGINE *impl (NULL)
      "buffer", // const unsigned char *key (NULL keeps the current key)
      "buffer", // const unsigned char *iv (NULL keeps the current iv)
      "i32", // int enc (1 encrypt, 0 decrypt, -1 unchanged)
    ],
    result: "i32",
  },
  /** int EVP_CipherUpdate(ctx, out, outl, in, inl) */
  EVP_CipherUpdate: {
    parameters: [
      "pointer", // EVP_CIPHER_CTX *ctx
      "buffer", // unsigned char *out (NULL when `in` is additional data)
      "buffer", // int *outl
      "buffer", // const unsigned char *in
      "i32", // int inl
    ],
    result: "i32",
  },
  /** int EVP_CipherFinal_ex(ctx, outm, outl); <= 0 on a bad tag when decrypting */
  EVP_CipherFinal_ex: {
    parameters: [
      "pointer", // EVP_CIPHER_CTX *ctx
      "buffer", // unsigned char *outm
      "buffer", // int *outl
    ],
    result: "i32",
  },
  /** int EVP_CIPHER_CTX_ctrl(ctx, type, arg, ptr) */
  EVP_CIPHER_CTX_ctrl: {
    parameters: [
      "pointer", // EVP_CIPHER_CTX *ctx
      "i32", // int type (EVP_CTRL_AEAD_GET_TAG 0x10, EVP_CTRL_AEAD_SET_TAG 0x11)
      "i32", // int arg (tag length)
      "buffer", // void *ptr (tag bytes)
    ],
    result: "i32",
  },
  /** EVP_PKEY *EVP_PKEY_new_raw_private_key(type, e, priv, len) */
  EVP_PKEY_new_raw_private_key: {
    parameters: [
      "i32", // int type (EVP_PKEY_X25519 = 1034)
      "pointer", // ENGINE *e (NULL)
      "buffer", // const unsigned char *priv
      "usize", // size_t len
    ],
    result: "pointer",
  },
  /** EVP_PKEY *EVP_PKEY_new_raw_public_key(type, e, pub, len) */
  EVP_PKEY_new_raw_public_key: {
    parameters: [
      "i32", // int type (EVP_PKEY_X25519 = 1034)
      "pointer", // ENGINE *e (NULL)
      "buffer", // const unsigned char *pub
      "usize", // size_t len
    ],
    result: "pointer",
  },
  /** int EVP_PKEY_get_raw_public_key(pkey, pub, len) */
  EVP_PKEY_get_raw_public_key: {
    parameters: [
      "pointer", // const EVP_PKEY *pkey
      "buffer", // unsigned char *pub
      "buffer", // size_t *len (in: capacity, out: length)
    ],
    result: "i32",
  },
  /** void EVP_PKEY_free(EVP_PKEY *pkey) */
  EVP_PKEY_free: {
    parameters: [
      "pointer", // EVP_PKEY *pkey
    ],
    result: "void",
  },
  /** EVP_PKEY_CTX *EVP_PKEY_CTX_new(pkey, e) */
  EVP_PKEY_CTX_new: {
    parameters: [
      "pointer", // EVP_PKEY *pkey
      "pointer", // ENGINE *e (NULL)
    ],
    result: "pointer",
  },
  /** void EVP_PKEY_CTX_free(EVP_PKEY_CTX *ctx) */
  EVP_PKEY_CTX_free: {
    parameters: [
      "pointer", // EVP_PKEY_CTX *ctx
    ],
    result: "void",
  },
  /** int EVP_PKEY_derive_init(EVP_PKEY_CTX *ctx) */
  EVP_PKEY_derive_init: {
    parameters: [
      "pointer", // EVP_PKEY_CTX *ctx
    ],
    result: "i32",
  },
  /** int EVP_PKEY_derive_set_peer(ctx, peer) */
  EVP_PKEY_derive_set_peer: {
    parameters: [
      "pointer", // EVP_PKEY_CTX *ctx
      "pointer", // EVP_PKEY *peer
    ],
    result: "i32",
  },
  /** int EVP_PKEY_derive(ctx, key, keylen) */
  EVP_PKEY_derive: {
    parameters: [
      "pointer", // EVP_PKEY_CTX *ctx
      "buffer", // unsigned char *key
      "buffer", // size_t *keylen (in: capacity, out: length)
    ],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;
