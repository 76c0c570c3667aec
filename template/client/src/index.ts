// The API's typed client: paths, bodies and answers come from src/schema.d.ts, which
// `make client` generates from ../backend/openapi.json (the contract).
import createClient, { type ClientOptions } from "openapi-fetch";

import type { components, operations, paths } from "./schema";

export type { components, operations, paths };
// The envelope of every error answer: `error.code` is stable, `error.message` is for people.
export type ErrorResponse = components["schemas"]["ErrorResponse"];

export function createApiClient(baseUrl: string, options: Omit<ClientOptions, "baseUrl"> = {}) {
  return createClient<paths>({ ...options, baseUrl });
}
