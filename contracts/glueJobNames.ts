/** The two Glue jobs of a stack. */
export type GlueJobKind = "legacy" | "ingest";

/** The two jobs: their script under glue/jobs/ and their name suffix (pure, shared with local/). */
export const JOBS: Record<GlueJobKind, { script: string; suffix: string }> = {
  legacy: { script: "legacy_members_to_fhir.py", suffix: "legacy-members-to-fhir" },
  ingest: { script: "ingest_fhir.py", suffix: "ingest-fhir" },
};

export const glueJobName = (prefix: string, kind: GlueJobKind) => `${prefix}-${JOBS[kind].suffix}`;
