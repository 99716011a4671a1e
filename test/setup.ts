import "../local/node22";
import { stopLocalStack } from "./support/localStack";
import { stopMoto } from "./support/moto";

// Mocks and config are installed per test by test/harness.ts#useStack; this
// file holds what the whole run shares.
process.env.AWS_REGION ??= "us-east-1";
process.env.POWERTOOLS_DEV = "false";
// Lambda runs Node 22; the SDK's notice that Node 20 support ends is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

export const mochaHooks = {
  async afterAll() {
    await stopLocalStack();
    await stopMoto();
  },
};
