import { defaultTagsOf } from "../../policy/adapt";
import type { Res } from "../../policy/rules";
import { recorded } from "../harness";

/**
 * The mocked deployment as the policy rules see it. Mocks resolve every
 * reference to its value, so links are found by id/ARN equality; the real
 * pack also uses the engine's property dependencies.
 */
export function mockedGraph(): Res[] {
  const providers = new Map(
    recorded
      .filter((r) => r.type === "pulumi:providers:aws")
      .map((p) => [p.name, defaultTagsOf(p.inputs)] as const),
  );
  return recorded.map((r) => {
    const providerName = /pulumi:providers:aws::([^:]+)::/.exec(r.provider ?? "")?.[1];
    return {
      urn: r.urn,
      type: r.type,
      name: r.name,
      id: r.id,
      props: r.state,
      deps: {},
      providerDefaultTags: providerName ? providers.get(providerName) : undefined,
    };
  });
}
