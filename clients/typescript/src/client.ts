// A typed client for Gatehouse, built on openapi-fetch and the types
// openapi-typescript generated from the server's OpenAPI document
// (schema.d.ts; regenerate with `npm run generate`).
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, paths };
export type User = components["schemas"]["User"];
export type Workspace = components["schemas"]["Workspace"];
export type ErrorBody = components["schemas"]["Error"];

/** Where the server is and how to reach its management API. */
export interface Options {
  /** The server's origin, e.g. https://auth.example.com. */
  origin: string;
  /** The management prefix (--management-prefix), "" for none. */
  prefix?: string;
  /** An access token (gat_…) sent as a bearer token. */
  token?: string;
}

/**
 * Returns a client for the management API. The OAuth endpoints and
 * /authorization stay at the origin; the /v1 routes move under the
 * management prefix, as the document's servers say.
 */
export function gatehouse(opts: Options) {
  const headers: Record<string, string> = {};
  if (opts.token) {
    headers["Authorization"] = `Bearer ${opts.token}`;
  }
  return {
    /** The /v1 routes, under the management prefix. */
    api: createClient<paths>({ baseUrl: opts.origin + (opts.prefix ?? ""), headers }),
    /** /authorization, /oauth/…, /.well-known/…, /healthz, /readyz. */
    root: createClient<paths>({ baseUrl: opts.origin, headers }),
  };
}

/** Turns an error answer into an Error that names its code. */
export function failure(what: string, status: number, body: ErrorBody | undefined): Error {
  return new Error(`${what}: ${status} ${body?.error ?? "?"}: ${body?.error_description ?? ""}`);
}
