import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { AlertsTopic } from "./components/alertsTopic";
import { appRouteStatements } from "./components/appPolicies";
import { trailArn } from "./components/auditPolicies";
import { AuditTrail } from "./components/auditTrail";
import { AuthorizedApi } from "./components/authorizedApi";
import { DeliveryPipeline } from "./components/deliveryPipeline";
import { GlueJobs } from "./components/glueJobs";
import { MemberRegistry } from "./components/memberRegistry";
import { MigrationStateMachine } from "./components/migrationStateMachine";
import { Monitoring } from "./components/monitoring";
import { registryAppStatements } from "./components/registryPolicies";
import { SecretStore } from "./components/secretStore";
import { parseStackConfig, type StackConfig } from "./contracts/config";

/**
 * The HOTH program: reads the typed stack configuration and composes the
 * components. No resource is created here directly; components take what they
 * need from each other through their args.
 */
function compose(config: StackConfig) {
  const provider = new aws.Provider(config.prefix, {
    region: config.region as aws.Region,
    defaultTags: { tags: config.tags },
  });
  const opts = { providers: { aws: provider }, protect: config.protect };
  const caller = aws.getCallerIdentityOutput({}, { provider });
  // The deployer's role (not its STS session) administers keys and secrets.
  const deployer = aws.iam.getSessionContextOutput({ arn: caller.arn }, { provider });

  const secrets = new SecretStore(
    "hoth",
    {
      prefix: config.prefix,
      region: config.region,
      accountId: caller.accountId,
      adminArns: [deployer.issuerArn],
      okta: {
        issuer: config.okta.issuer,
        audience: config.okta.audience,
        allowedClientIds: config.okta.allowedClientIds,
        jwksUri: config.okta.jwksUri,
      },
      deletionWindowInDays: config.kmsDeletionWindowDays,
      // Secrets; the lake and pipeline artifacts (S3); Glue bookmarks; notifications (SNS);
      // the member registry (DynamoDB).
      viaServices: ["secretsmanager", "s3", "glue", "sns", "dynamodb"],
      // EventBridge rules and CloudWatch alarms publish to encrypted topics.
      servicePrincipals: ["events.amazonaws.com", "cloudwatch.amazonaws.com"],
      // The trail needs the key, and the key policy its ARN: known from its name.
      cloudTrailArns: [caller.accountId.apply((a) => trailArn(config.prefix, config.region, a))],
    },
    opts,
  );
  const alerts = new AlertsTopic(
    "hoth",
    { prefix: config.prefix, accountId: caller.accountId, keyArn: secrets.keyArn },
    opts,
  );

  const glue = new GlueJobs(
    "hoth",
    {
      ...config.glue,
      prefix: config.prefix,
      region: config.region,
      accountId: caller.accountId,
      secrets,
      logRetentionDays: config.logRetentionDays,
    },
    opts,
  );

  const registry = new MemberRegistry(
    "hoth",
    {
      prefix: config.prefix,
      region: config.region,
      accountId: caller.accountId,
      keyArn: secrets.keyArn,
      lakeBucket: glue.lakeBucket,
      lakeBucketArn: glue.lakeBucketArn,
      deletionProtection: config.registry.deletionProtection,
      exportTimeoutSeconds: config.registry.exportTimeoutSeconds,
      logRetentionDays: config.logRetentionDays,
      logLevel: config.logLevel,
    },
    opts,
  );

  const migration = new MigrationStateMachine(
    "hoth",
    {
      prefix: config.prefix,
      region: config.region,
      accountId: caller.accountId,
      keyArn: secrets.keyArn,
      lakeBucket: glue.lakeBucket,
      legacyJob: { name: glue.jobNames.legacy, arn: glue.jobArns.legacy },
      ingestJob: { name: glue.jobNames.ingest, arn: glue.jobArns.ingest },
      registryExport: {
        arn: registry.exportFunctionArn,
        timeoutSeconds: config.registry.exportTimeoutSeconds,
      },
      jobTimeoutSeconds: config.glue.timeoutMinutes * 60,
      logRetentionDays: config.logRetentionDays,
      logLevel: config.migration.logLevel,
      schedule: {
        expression: config.migration.scheduleExpression,
        enabled: config.migration.scheduleEnabled,
        org: config.migration.scheduledOrg,
        inputPrefix: config.migration.scheduledInputPrefix,
      },
      alerts,
      bulk: {
        ...config.bulk,
        adminArns: [deployer.issuerArn],
        lakeBucketArn: glue.lakeBucketArn,
        logLevel: config.logLevel,
        reservedConcurrency: config.lambda.reservedConcurrency,
        deletionWindowInDays: config.kmsDeletionWindowDays,
      },
    },
    opts,
  );

  const api = new AuthorizedApi(
    "hoth",
    {
      prefix: config.prefix,
      stageName: config.stack,
      accountId: caller.accountId,
      secrets,
      logRetentionDays: config.logRetentionDays,
      logLevel: config.logLevel,
      secretCacheTtlSeconds: config.secretCacheTtlSeconds,
      lambda: config.lambda,
      throttling: {
        rateLimit: config.api.throttlingRateLimit,
        burstLimit: config.api.throttlingBurstLimit,
      },
      authorizerCacheTtlSeconds: config.api.authorizerCacheTtlSeconds,
      orgClaim: config.okta.orgClaim,
      waf: { enabled: config.api.wafEnabled, rateLimitPer5Min: config.api.wafRateLimitPer5Min },
      appEnvironment: {
        STATE_MACHINE_ARN: migration.stateMachineArn,
        LAKE_BUCKET: glue.lakeBucket,
        REGISTRY_TABLE: registry.tableName,
        UPLOAD_KEY_ARN: secrets.keyArn,
        UPLOAD_MAX_BYTES: String(config.uploads.maxBytes),
        UPLOAD_EXPIRES_SECONDS: String(config.uploads.expiresSeconds),
        BULK_JWKS: migration.bulkJwks ?? "",
        BULK_SOURCE_NAMES: config.bulk.sources.map((s) => s.name).join(","),
      },
      appStatements: pulumi
        .all([migration.stateMachineArn, glue.lakeBucketArn, secrets.keyArn, registry.tableArn])
        .apply(([stateMachineArn, lakeBucketArn, keyArn, tableArn]) => [
          ...appRouteStatements({ stateMachineArn, lakeBucketArn, keyArn, region: config.region }),
          ...registryAppStatements({ tableArn, keyArn, lakeBucketArn, region: config.region }),
        ]),
    },
    opts,
  );

  const pipeline = config.pipeline
    ? new DeliveryPipeline(
        "hoth",
        {
          ...config.pipeline,
          prefix: config.prefix,
          stack: config.stack,
          region: config.region,
          accountId: caller.accountId,
          keyArn: secrets.keyArn,
          logRetentionDays: config.logRetentionDays,
        },
        opts,
      )
    : undefined;

  const audit = new AuditTrail(
    "hoth",
    {
      prefix: config.prefix,
      region: config.region,
      accountId: caller.accountId,
      keyArn: secrets.keyArn,
      lakeBucketArn: glue.lakeBucketArn,
      registryTableArn: registry.tableArn,
      retentionDays: config.audit.retentionDays,
    },
    opts,
  );

  // Every function and state machine of the stack is listed here: each gets its alarms.
  const monitoring = new Monitoring(
    "hoth",
    {
      prefix: config.prefix,
      region: config.region,
      alerts,
      api: { name: api.apiName, stage: api.stageName },
      functions: [
        {
          id: "authorizer",
          name: api.authorizerFunctionName,
          timeoutSeconds: config.lambda.timeoutSeconds,
        },
        { id: "app", name: api.appFunctionName, timeoutSeconds: config.lambda.timeoutSeconds },
        {
          id: "registry-export",
          name: registry.exportFunctionName,
          timeoutSeconds: config.registry.exportTimeoutSeconds,
        },
        ...migration.bulkFunctions,
      ],
      stateMachines: [{ id: "migration", arn: migration.stateMachineArn }],
      deadLetterQueues: [],
      glueJobs: [glue.jobNames.legacy, glue.jobNames.ingest],
      secrets: {
        namePrefix: `${config.prefix}/`,
        arnPrefix: pulumi.interpolate`arn:aws:secretsmanager:${config.region}:${caller.accountId}:secret:${config.prefix}/`,
      },
      thresholds: config.alarms,
    },
    opts,
  );

  // Every reader has been granted: write the secrets' resource policies.
  secrets.seal();
  // Every publisher has been added: write the alerts topic's policy.
  alerts.seal();

  return {
    provider,
    secrets,
    alerts,
    glue,
    registry,
    migration,
    api,
    audit,
    monitoring,
    ...(pipeline ? { pipeline } : {}),
  };
}

/** Stack outputs: what operators and the pipeline need to find. */
function outputs(platform: ReturnType<typeof compose>) {
  return {
    keyArn: platform.secrets.keyArn,
    oktaSecretArn: platform.secrets.secretArns.okta,
    appSecretArn: platform.secrets.secretArns.app,
    tokenizationSecretArn: platform.secrets.secretArns.tokenization,
    apiUrl: platform.api.url,
    restApiId: platform.api.restApiId,
    stageName: platform.api.stageName,
    lakeBucket: platform.glue.lakeBucket,
    registryTable: platform.registry.tableName,
    glueJobs: platform.glue.jobNames,
    curatedDatabase: platform.glue.databaseName,
    stateMachineArn: platform.migration.stateMachineArn,
    migrationEventBus: platform.migration.eventBusName,
    alertsTopicArn: platform.alerts.arn,
    auditTrailArn: platform.audit.trailArn,
    auditLogBucket: platform.audit.logBucket,
    auditDatabase: platform.audit.databaseName,
    dashboardName: platform.monitoring.dashboardName,
    // Register these with a source EHR (SMART Backend Services).
    bulkJwks: platform.migration.bulkJwks,
    bulkJwksUrl: pulumi.interpolate`${platform.api.url}/.well-known/jwks.json`,
    bulkSigningKeyArn: platform.migration.signingKeyArn,
    pipelineName: platform.pipeline?.pipelineName,
    notificationsTopicArn: platform.pipeline?.topicArn,
  };
}

function loadStackConfig(): StackConfig {
  return parseStackConfig(pulumi.getStack(), pulumi.runtime.allConfig());
}

/**
 * Pulumi invokes the module's export when it is a function; `compose` and
 * `outputs` ride along so tests and `npm run plan` can run one stack's program
 * under mocks with a config of their choosing.
 */
export = Object.assign(() => outputs(compose(loadStackConfig())), { compose, outputs });
