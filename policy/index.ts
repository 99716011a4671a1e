import { PolicyPack } from "@pulumi/policy";
import { fromPolicyResource } from "./adapt";
import { RULES, type RuleContext } from "./rules";

// Run with `pulumi preview --policy-pack policy --policy-pack-config <file>`
// (scripts/deploy.sh writes the file from the stack's typed config with
// scripts/policy-config.ts). Every rule is mandatory: a violation fails the preview.
new PolicyPack("hoth-compliance", {
  enforcementLevel: "mandatory",
  policies: RULES.map((rule) => ({
    name: rule.name,
    description: rule.description,
    configSchema: {
      properties: {
        requireTableDeletionProtection: { type: "boolean", default: false },
        requireAuditTrail: { type: "boolean", default: true },
      },
    },
    validateStack: (args, reportViolation) => {
      const resources = args.resources.map(fromPolicyResource);
      const context = args.getConfig<RuleContext>();
      for (const violation of rule.check(resources, context)) {
        // A stack-level violation names no resource.
        reportViolation(violation.message, violation.urn || undefined);
      }
    },
  })),
});
