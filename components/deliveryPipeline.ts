import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { assumeRolePolicy } from "../contracts/iam";
import { eventsToTopic } from "./eventsToTopic";
import {
  buildRoleStatements,
  deployRoleStatements,
  type PipelineScope,
  pipelineRoleStatements,
} from "./pipelinePolicies";
import { secureBucket } from "./secureBucket";

export interface DeliveryPipelineArgs {
  prefix: string;
  /** The stack this pipeline deploys. */
  stack: string;
  region: string;
  accountId: pulumi.Input<string>;
  /** The stack's KMS key (artifacts, logs, topic). */
  keyArn: pulumi.Input<string>;
  logRetentionDays: number;
  repository: string;
  branch: string;
  connectionArn: string;
  stateBucket: string;
  secretsKeyArn: string;
  /** A manual approval between Build and Deploy. @default false */
  approval?: boolean;
  buildImage: string;
  computeType: string;
  buildTimeoutMinutes: number;
  deployTimeoutMinutes: number;
  pulumiVersion: string;
  pulumiSha256: string;
}

/** Stage and action names, in order (also asserted by the tests). */
export const STAGES = { source: "Source", build: "Build", approval: "Approval", deploy: "Deploy" };

/**
 * CodePipeline V2 that redeploys one stack on every push to its branch:
 * Source (CodeStar connection) -> Build (lint + tests, JUnit reports) ->
 * optional manual Approval -> Deploy (`pulumi preview --policy-pack` then
 * `pulumi up` against the S3 backend). Failures are published to an SNS topic.
 */
export class DeliveryPipeline extends pulumi.ComponentResource {
  readonly pipelineName: pulumi.Output<string>;
  readonly topicArn: pulumi.Output<string>;
  readonly artifactBucket: pulumi.Output<string>;

  constructor(name: string, args: DeliveryPipelineArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hoth:pipeline:DeliveryPipeline", name, {}, opts);
    const approval = args.approval ?? false;
    const child = { parent: this };
    const p = args.prefix;

    const bucket = secureBucket(
      `${name}-artifacts`,
      {
        bucket: `${p}-pipeline-artifacts`,
        keyArn: args.keyArn,
        forceDestroy: true,
        lifecycleRules: [
          { id: "expire-artifacts", status: "Enabled", filter: {}, expiration: { days: 30 } },
        ],
      },
      child,
    );

    const topic = new aws.sns.Topic(
      `${name}-notifications`,
      { name: `${p}-pipeline`, kmsMasterKeyId: args.keyArn },
      child,
    );

    const logGroup = (id: string) =>
      new aws.cloudwatch.LogGroup(
        `${name}-${id}-logs`,
        {
          name: `/aws/codebuild/${p}-${id}`,
          retentionInDays: args.logRetentionDays,
          kmsKeyId: args.keyArn,
        },
        child,
      );
    const buildLogs = logGroup("build");
    const deployLogs = logGroup("deploy");

    const role = (id: string, service: string) =>
      new aws.iam.Role(
        `${name}-${id}-role`,
        {
          name: `${p}-${id}`,
          assumeRolePolicy: pulumi
            .output(args.accountId)
            .apply((a) => JSON.stringify(assumeRolePolicy(service, a))),
        },
        child,
      );
    const pipelineRole = role("pipeline", "codepipeline.amazonaws.com");
    const buildRole = role("build", "codebuild.amazonaws.com");
    const deployRole = role("deploy", "codebuild.amazonaws.com");

    const project = (
      id: "build" | "deploy",
      serviceRole: aws.iam.Role,
      logs: aws.cloudwatch.LogGroup,
      env: Record<string, string>,
      timeout: number,
    ) =>
      new aws.codebuild.Project(
        `${name}-${id}`,
        {
          name: `${p}-${id}`,
          serviceRole: serviceRole.arn,
          encryptionKey: args.keyArn,
          buildTimeout: timeout,
          source: { type: "CODEPIPELINE", buildspec: `buildspec/${id}.yml` },
          artifacts: { type: "CODEPIPELINE" },
          environment: {
            type: "LINUX_CONTAINER",
            image: args.buildImage,
            computeType: args.computeType,
            imagePullCredentialsType: "CODEBUILD",
            environmentVariables: Object.entries({ CI: "true", ...env }).map(([n, value]) => ({
              name: n,
              value,
              type: "PLAINTEXT",
            })),
          },
          logsConfig: { cloudwatchLogs: { groupName: logs.name, status: "ENABLED" } },
        },
        child,
      );
    const build = project("build", buildRole, buildLogs, {}, args.buildTimeoutMinutes);
    const deploy = project(
      "deploy",
      deployRole,
      deployLogs,
      {
        STACK: args.stack,
        PULUMI_BACKEND_URL: `s3://${args.stateBucket}/${p}`,
        PULUMI_VERSION: args.pulumiVersion,
        PULUMI_SHA256: args.pulumiSha256,
        AWS_REGION: args.region,
      },
      args.deployTimeoutMinutes,
    );

    const scope: pulumi.Output<PipelineScope> = pulumi
      .all([
        args.accountId,
        bucket.arn,
        args.keyArn,
        build.arn,
        deploy.arn,
        buildLogs.arn,
        deployLogs.arn,
        topic.arn,
      ])
      .apply(
        ([
          accountId,
          artifactBucketArn,
          keyArn,
          buildProjectArn,
          deployProjectArn,
          buildLogGroupArn,
          deployLogGroupArn,
          topicArn,
        ]) => ({
          prefix: p,
          region: args.region,
          accountId,
          artifactBucketArn,
          keyArn,
          connectionArn: args.connectionArn,
          buildProjectArn,
          deployProjectArn,
          buildLogGroupArn,
          deployLogGroupArn,
          topicArn,
          stateBucket: args.stateBucket,
          secretsKeyArn: args.secretsKeyArn,
        }),
      );
    const grant = (id: string, r: aws.iam.Role, statements: (s: PipelineScope) => unknown[]) =>
      new aws.iam.RolePolicy(
        `${name}-${id}-policy`,
        {
          role: r.name,
          policy: scope.apply((s) =>
            JSON.stringify({ Version: "2012-10-17", Statement: statements(s) }),
          ),
        },
        child,
      );
    const grants = [
      grant("pipeline", pipelineRole, pipelineRoleStatements),
      grant("build", buildRole, buildRoleStatements),
      grant("deploy", deployRole, (s) => deployRoleStatements(s, args.stack)),
    ];

    const stages: aws.types.input.codepipeline.PipelineStage[] = [
      {
        name: STAGES.source,
        actions: [
          {
            name: STAGES.source,
            category: "Source",
            owner: "AWS",
            provider: "CodeStarSourceConnection",
            version: "1",
            outputArtifacts: ["source"],
            configuration: {
              ConnectionArn: args.connectionArn,
              FullRepositoryId: args.repository,
              BranchName: args.branch,
              OutputArtifactFormat: "CODE_ZIP",
              DetectChanges: "false",
            },
          },
        ],
      },
      {
        name: STAGES.build,
        actions: [
          {
            name: STAGES.build,
            category: "Build",
            owner: "AWS",
            provider: "CodeBuild",
            version: "1",
            inputArtifacts: ["source"],
            configuration: { ProjectName: build.name },
          },
        ],
      },
      ...(approval
        ? [
            {
              name: STAGES.approval,
              actions: [
                {
                  name: STAGES.approval,
                  category: "Approval",
                  owner: "AWS",
                  provider: "Manual",
                  version: "1",
                  configuration: {
                    NotificationArn: topic.arn,
                    CustomData: `Approve deploying ${args.repository}@${args.branch} to stack ${args.stack}`,
                  },
                },
              ],
            },
          ]
        : []),
      {
        name: STAGES.deploy,
        actions: [
          {
            name: STAGES.deploy,
            category: "Build",
            owner: "AWS",
            provider: "CodeBuild",
            version: "1",
            inputArtifacts: ["source"],
            outputArtifacts: ["preview"],
            configuration: { ProjectName: deploy.name },
          },
        ],
      },
    ];

    const pipeline = new aws.codepipeline.Pipeline(
      `${name}-pipeline`,
      {
        name: `${p}-delivery`,
        pipelineType: "V2",
        executionMode: "QUEUED",
        roleArn: pipelineRole.arn,
        artifactStores: [
          { location: bucket.bucket, type: "S3", encryptionKey: { id: args.keyArn, type: "KMS" } },
        ],
        // Start on a push to the stack's branch (the source action does not poll).
        triggers: [
          {
            providerType: "CodeStarSourceConnection",
            gitConfiguration: {
              sourceActionName: STAGES.source,
              pushes: [{ branches: { includes: [args.branch] } }],
            },
          },
        ],
        stages,
      },
      { ...child, dependsOn: grants },
    );

    // Failed executions -> SNS. EventBridge may publish to the (KMS) topic
    // only for this rule.
    const failures = new aws.cloudwatch.EventRule(
      `${name}-failures`,
      {
        name: `${p}-pipeline-failures`,
        eventPattern: pipeline.name.apply((n) =>
          JSON.stringify({
            source: ["aws.codepipeline"],
            "detail-type": ["CodePipeline Pipeline Execution State Change"],
            detail: { pipeline: [n], state: ["FAILED"] },
          }),
        ),
      },
      child,
    );
    eventsToTopic(
      {
        targetName: `${name}-failures-to-sns`,
        policyName: `${name}-notifications-policy`,
        sid: "PipelineFailures",
        rule: failures,
        topic,
      },
      child,
    );

    this.pipelineName = pipeline.name;
    this.topicArn = topic.arn;
    this.artifactBucket = bucket.bucket;
    this.registerOutputs({ pipelineName: this.pipelineName, topicArn: this.topicArn });
  }
}
