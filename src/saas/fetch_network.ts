/**
 * MSAL's network module over `fetch`. MSAL's own client speaks node:http;
 * routing it through fetch lets the token side and the Graph side share
 * one transport: the same proxy settings, the same trusted CAs (a test
 * passes a fetch bound to a `Deno.HttpClient` that trusts its local CA).
 */
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from "@azure/msal-node";

/** The fetch signature the SaaS clients call. */
export type FetchFn = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Largest issuer response read (1 MiB): discovery documents and token responses are small. */
const RESPONSE_LIMIT = 1024 * 1024;

async function toNetworkResponse<T>(res: Response): Promise<NetworkResponse<T>> {
  const headers: Record<string, string> = {};
  res.headers.forEach((v, k) => (headers[k.toLowerCase()] = v));
  const text = await res.text();
  let body: unknown = {};
  if (text.length <= RESPONSE_LIMIT) {
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON (an HTML error page): MSAL reports the status with an empty body.
    }
  }
  return { status: res.status, headers, body: body as T };
}

/** An INetworkModule whose requests go through `fetchFn`, each bounded by `timeoutMs`. */
export function fetchNetworkModule(fetchFn: FetchFn, timeoutMs: number): INetworkModule {
  return {
    async sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number) {
      const res = await fetchFn(url, {
        method: "GET",
        headers: options?.headers,
        signal: AbortSignal.timeout(timeout ?? timeoutMs),
      });
      return toNetworkResponse<T>(res);
    },
    async sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions) {
      const res = await fetchFn(url, {
        method: "POST",
        headers: options?.headers,
        body: options?.body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      return toNetworkResponse<T>(res);
    },
  };
}
