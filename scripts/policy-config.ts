import { parseStackConfig } from "../contracts/config";
import { stackConfigFile } from "../local/stackConfig";
import { RULES, type RuleContext } from "../policy/rules";

/**
 * `tsx scripts/policy-config.ts <stack>`: the policy pack's config for a stack
 * (`pulumi preview --policy-pack-config`), from its typed configuration, so
 * what the rules require follows what the stack says.
 */
export function policyContext(stack: string): RuleContext {
  const config = parseStackConfig(stack, stackConfigFile(stack));
  return {
    requireTableDeletionProtection: config.registry.deletionProtection,
    requireAuditTrail: true,
  };
}

export function policyConfig(stack: string): Record<string, RuleContext> {
  const context = policyContext(stack);
  return Object.fromEntries(RULES.map((r) => [r.name, context]));
}

if (require.main === module) {
  const stack = process.argv[2];
  if (!stack) {
    console.error("usage: tsx scripts/policy-config.ts <stack>");
    process.exit(2);
  }
  console.log(JSON.stringify(policyConfig(stack), null, 2));
}
