import type { Res } from "./rules";

/** The parts of @pulumi/policy's PolicyResource the rules use. */
export interface PolicyResourceLike {
  urn: string;
  type: string;
  name: string;
  props: Record<string, unknown>;
  propertyDependencies: Record<string, { urn: string }[]>;
  provider?: { props: Record<string, unknown> };
}

/** Provider `defaultTags`, which the engine may hand over as an object or a JSON string. */
export function defaultTagsOf(providerProps: Record<string, unknown> | undefined) {
  const raw = providerProps?.defaultTags;
  const parsed = typeof raw === "string" ? JSON.parse(raw) : raw;
  return (parsed as { tags?: Record<string, string> } | undefined)?.tags;
}

export function fromPolicyResource(p: PolicyResourceLike): Res {
  return {
    urn: p.urn,
    type: p.type,
    name: p.name,
    id: typeof p.props.id === "string" ? p.props.id : undefined,
    props: p.props,
    deps: Object.fromEntries(
      Object.entries(p.propertyDependencies ?? {}).map(([k, list]) => [k, list.map((d) => d.urn)]),
    ),
    providerDefaultTags: defaultTagsOf(p.provider?.props),
  };
}
