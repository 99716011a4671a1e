import { migrationDefinition } from "../../contracts/migrationDefinition";

/** The dev stack's migration definition, as the definition and local Step Functions tests use it. */
export const devDefinition = migrationDefinition({
  legacyJobName: "hoth-dev-legacy-members-to-fhir",
  ingestJobName: "hoth-dev-ingest-fhir",
  registryExportFunctionArn:
    "arn:aws:lambda:us-east-1:123456789012:function:hoth-dev-registry-export",
  registryExportTimeoutSeconds: 300,
  lakeBucket: "hoth-dev-lake",
  eventBusName: "hoth-dev-migrations",
  legacyTimeoutSeconds: 3600,
  ingestTimeoutSeconds: 7200,
});
