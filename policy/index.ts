import { PolicyPack } from "@pulumi/policy";
import { fromPolicyResource } from "./adapt";
import { RULES } from "./rules";

// Run with `pulumi preview --policy-pack policy` (the pipeline's deploy stage
// does). Every rule is mandatory: a violation fails the preview.
new PolicyPack("hoth-compliance", {
  enforcementLevel: "mandatory",
  policies: RULES.map((rule) => ({
    name: rule.name,
    description: rule.description,
    validateStack: (args, reportViolation) => {
      const resources = args.resources.map(fromPolicyResource);
      for (const violation of rule.check(resources)) {
        // A stack-level violation names no resource.
        reportViolation(violation.message, violation.urn || undefined);
      }
    },
  })),
});
