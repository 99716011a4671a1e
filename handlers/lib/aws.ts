import * as http from "node:http";
import * as https from "node:https";
import type { Duplex } from "node:stream";

/**
 * Timeouts and retries of every AWS SDK client in the handlers. One call can
 * take at most ATTEMPTS x REQUEST_TIMEOUT_MS plus backoff, which stays inside
 * the request budget (handlers/lib/deadline.ts) and so inside
 * `hoth:lambda.timeoutSeconds` (at least MIN_LAMBDA_TIMEOUT_SECONDS, config.ts)
 * and API Gateway's 29 s integration timeout.
 */
export const CONNECTION_TIMEOUT_MS = 1000;
export const REQUEST_TIMEOUT_MS = 3000;
export const ATTEMPTS = 2;
/** The handler's margin to answer after its last AWS call gives up. */
export const ANSWER_MARGIN_MS = 1500;
export const MIN_LAMBDA_TIMEOUT_SECONDS = Math.ceil(
  (ATTEMPTS * (REQUEST_TIMEOUT_MS + CONNECTION_TIMEOUT_MS) + ANSWER_MARGIN_MS) / 1000,
);

/**
 * Sockets that close with a TCP reset when a request on them is abandoned
 * (timeout, abort): a request the service has not read yet is then dropped
 * with the connection instead of being executed after the caller was told
 * 503. A request the service already read may still complete; that is what
 * the Idempotency-Key retry is for. TLS sockets close normally.
 */
function resetting<T extends http.Agent>(agent: T): T {
  const create = (agent as unknown as { createConnection: (...a: unknown[]) => Duplex })
    .createConnection;
  (agent as unknown as { createConnection: (...a: unknown[]) => Duplex }).createConnection =
    function (this: unknown, ...args: unknown[]) {
      const socket = create.apply(this, args) as Duplex & {
        resetAndDestroy?: () => void;
        connecting?: boolean;
        _handle?: unknown;
        encrypted?: boolean;
      };
      const destroy = socket.destroy;
      let resetting = false;
      socket.destroy = function (this: typeof socket, error?: Error) {
        if (
          !resetting &&
          !this.destroyed &&
          !this.connecting &&
          !this.encrypted &&
          this._handle &&
          typeof this.resetAndDestroy === "function"
        ) {
          resetting = true;
          this.resetAndDestroy();
          return this;
        }
        return destroy.call(this, error);
      } as typeof socket.destroy;
      return socket;
    };
  return agent;
}

const agents = {
  httpAgent: resetting(new http.Agent({ keepAlive: true, maxSockets: 50 })),
  httpsAgent: resetting(new https.Agent({ keepAlive: true, maxSockets: 50 })),
};

/** Options for every SDK client a handler creates. */
export function clientOptions() {
  return {
    maxAttempts: ATTEMPTS,
    requestHandler: {
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      throwOnRequestTimeout: true,
      ...agents,
    },
  };
}
