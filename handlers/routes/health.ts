import { jsonResponse, type RouteImpl } from "../lib/http";
import type { SecretCache } from "../lib/secrets";

export interface HealthSettings {
  stack: string;
  version: string;
  appSecretId: string;
}

/**
 * POST /health: proves the function is configured and can read its secret.
 * Returns the secret's metadata (name, version, when it last changed), never
 * its value. A SecretUnavailableError propagates to the router (503).
 */
export const health =
  (settings: HealthSettings, secrets: SecretCache): RouteImpl =>
  async ({ event }) => {
    const secret = await secrets.get(settings.appSecretId);
    return jsonResponse(200, {
      status: "ok",
      stack: settings.stack,
      version: settings.version,
      requestId: event.requestContext.requestId,
      secret: {
        name: secret.name,
        versionId: secret.versionId,
        lastChanged: secret.createdDate?.toISOString() ?? null,
      },
    });
  };
