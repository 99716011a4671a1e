import * as http from "node:http";
import * as https from "node:https";

import { ATTEMPTS, CONNECTION_TIMEOUT_MS, REQUEST_TIMEOUT_MS } from "../../contracts/budgets";

export {
  ANSWER_MARGIN_MS,
  ATTEMPTS,
  CONNECTION_TIMEOUT_MS,
  MIN_LAMBDA_TIMEOUT_SECONDS,
  REQUEST_TIMEOUT_MS,
} from "../../contracts/budgets";

const agents = {
  httpAgent: new http.Agent({ keepAlive: true, maxSockets: 50 }),
  httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 50 }),
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
