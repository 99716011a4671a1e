import { Logger } from "@aws-lambda-powertools/logger";

/**
 * Structured JSON logs (Powertools Logger). Handlers append a correlation id
 * per request; nothing here ever logs a token, a secret value or a patient
 * identifier: callers log error classes and ids they generated themselves.
 */
export function createLogger(serviceName: string): Logger {
  return new Logger({ serviceName, logLevel: (process.env.LOG_LEVEL as "INFO") ?? "INFO" });
}

const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's `X-Correlation-Id` when well-formed, else API Gateway's request id. */
export function correlationId(
  headers: Record<string, string | undefined> | null,
  requestId: string,
): string {
  const given = Object.entries(headers ?? {}).find(
    ([k]) => k.toLowerCase() === "x-correlation-id",
  )?.[1];
  return given && CORRELATION_ID.test(given) ? given : requestId;
}
