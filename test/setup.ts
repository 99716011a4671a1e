import "../local/node22";
import { stopLocalStack } from "./support/localStack";
import { stopMoto } from "./support/moto";

// Mocks and config are installed per test by test/harness.ts#useStack; this
// file holds what the whole run shares.
process.env.AWS_REGION ??= "us-east-1";
process.env.POWERTOOLS_DEV = "false";

export const mochaHooks = {
  async afterAll() {
    await stopLocalStack();
    await stopMoto();
  },
};
