/**
 * The member registry table's shape, shared by MemberRegistry, the local
 * stack and the tests: string keys `pk`/`sk`, TTL attribute `exp`
 * (handlers/lib/registry.ts documents the items).
 */
export const REGISTRY_KEYS = { hashKey: "pk", rangeKey: "sk", ttlAttribute: "exp" } as const;

export const registryTableName = (prefix: string) => `${prefix}-member-registry`;
