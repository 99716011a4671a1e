import { logWriteStatements, type Statement } from "../contracts/iam";

/**
 * IAM statements of the delivery pipeline's three roles, as pure data.
 * The build role can read the source and write its logs and test reports,
 * nothing else; the deploy role can manage this stack's resources (scoped to
 * the stack's naming prefix wherever the service's ARNs carry a name), its
 * own state prefix, and the Pulumi secrets key.
 */

export interface PipelineScope {
  prefix: string;
  region: string;
  accountId: string;
  artifactBucketArn: string;
  /** The stack's KMS key (artifacts, logs). */
  keyArn: string;
  connectionArn: string;
  buildProjectArn: string;
  deployProjectArn: string;
  buildLogGroupArn: string;
  deployLogGroupArn: string;
  topicArn: string;
  stateBucket: string;
  /** KMS key of the Pulumi secrets provider and the state bucket. */
  secretsKeyArn: string;
}

/** Decrypt and write artifacts encrypted with the stack key, through S3 only. */
const artifactsKey = (s: PipelineScope): Statement => ({
  Sid: "ArtifactsKey",
  Effect: "Allow",
  Action: ["kms:Decrypt", "kms:GenerateDataKey"],
  Resource: s.keyArn,
  Condition: { StringEquals: { "kms:ViaService": `s3.${s.region}.amazonaws.com` } },
});

export function pipelineRoleStatements(s: PipelineScope): Statement[] {
  return [
    {
      Sid: "Artifacts",
      Effect: "Allow",
      Action: ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
      Resource: `${s.artifactBucketArn}/*`,
    },
    artifactsKey(s),
    {
      Sid: "Source",
      Effect: "Allow",
      Action: "codestar-connections:UseConnection",
      Resource: s.connectionArn,
    },
    {
      Sid: "RunProjects",
      Effect: "Allow",
      Action: ["codebuild:StartBuild", "codebuild:BatchGetBuilds"],
      Resource: [s.buildProjectArn, s.deployProjectArn],
    },
    { Sid: "NotifyApprovers", Effect: "Allow", Action: "sns:Publish", Resource: s.topicArn },
  ];
}

function projectBasics(s: PipelineScope, logGroupArn: string): Statement[] {
  return [
    ...logWriteStatements(logGroupArn),
    {
      Sid: "ReadSource",
      Effect: "Allow",
      Action: ["s3:GetObject", "s3:GetObjectVersion"],
      Resource: `${s.artifactBucketArn}/*`,
    },
    artifactsKey(s),
  ];
}

export function buildRoleStatements(s: PipelineScope): Statement[] {
  return [
    ...projectBasics(s, s.buildLogGroupArn),
    {
      Sid: "TestReports",
      Effect: "Allow",
      Action: [
        "codebuild:CreateReportGroup",
        "codebuild:CreateReport",
        "codebuild:UpdateReport",
        "codebuild:BatchPutTestCases",
      ],
      Resource: `arn:aws:codebuild:${s.region}:${s.accountId}:report-group/${s.prefix}-build-*`,
    },
  ];
}

/**
 * What `pulumi up` of this stack needs. Broad grants and why:
 * - `apigateway:*` verbs on the region's `/restapis*`: API Gateway ARNs carry
 *   the generated API id, not a name, so no prefix can scope them.
 * - `kms:CreateKey` and Glue security configurations accept no resource
 *   (policy/rules.ts UNSCOPABLE_ACTIONS lists the AWS pages); other KMS
 *   actions are confined to keys tagged with this stack.
 * - `<service>:*` on prefix-scoped ARNs: Pulumi reads, creates, updates,
 *   tags and deletes those resources, and the read set grows with the
 *   provider; the prefix keeps them to this stack.
 */
export function deployRoleStatements(s: PipelineScope, stack: string): Statement[] {
  const { prefix: p, region: r, accountId: a } = s;
  const arn = (service: string, resource: string) => `arn:aws:${service}:${r}:${a}:${resource}`;
  return [
    ...projectBasics(s, s.deployLogGroupArn),
    {
      Sid: "PreviewArtifact",
      Effect: "Allow",
      Action: "s3:PutObject",
      Resource: `${s.artifactBucketArn}/*`,
    },
    {
      Sid: "StateList",
      Effect: "Allow",
      Action: "s3:ListBucket",
      Resource: `arn:aws:s3:::${s.stateBucket}`,
      Condition: { StringLike: { "s3:prefix": [`${p}/*`, p] } },
    },
    {
      Sid: "StateObjects",
      Effect: "Allow",
      Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
      Resource: `arn:aws:s3:::${s.stateBucket}/${p}/*`,
    },
    {
      Sid: "SecretsProvider",
      Effect: "Allow",
      Action: ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
      Resource: s.secretsKeyArn,
    },
    { Sid: "WhoAmI", Effect: "Allow", Action: "sts:GetCallerIdentity", Resource: "*" },
    {
      Sid: "StackRoles",
      Effect: "Allow",
      Action: [
        "iam:CreateRole",
        "iam:DeleteRole",
        "iam:GetRole",
        "iam:UpdateRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:TagRole",
        "iam:UntagRole",
        "iam:ListRoleTags",
        "iam:PutRolePolicy",
        "iam:GetRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:ListRolePolicies",
        "iam:ListAttachedRolePolicies",
        "iam:ListInstanceProfilesForRole",
      ],
      Resource: `arn:aws:iam::${a}:role/${p}-*`,
    },
    {
      Sid: "PassStackRoles",
      Effect: "Allow",
      Action: "iam:PassRole",
      Resource: `arn:aws:iam::${a}:role/${p}-*`,
      Condition: {
        StringEquals: {
          "iam:PassedToService": [
            "lambda.amazonaws.com",
            "states.amazonaws.com",
            "glue.amazonaws.com",
            "events.amazonaws.com",
            "codebuild.amazonaws.com",
            "codepipeline.amazonaws.com",
          ],
        },
      },
    },
    { Sid: "CreateKeys", Effect: "Allow", Action: "kms:CreateKey", Resource: "*" },
    {
      Sid: "StackKeys",
      Effect: "Allow",
      Action: [
        "kms:DescribeKey",
        "kms:GetKeyPolicy",
        "kms:PutKeyPolicy",
        "kms:EnableKeyRotation",
        "kms:GetKeyRotationStatus",
        "kms:ListResourceTags",
        "kms:TagResource",
        "kms:UntagResource",
        "kms:UpdateKeyDescription",
        "kms:ScheduleKeyDeletion",
        "kms:CreateAlias",
        "kms:DeleteAlias",
        "kms:UpdateAlias",
      ],
      Resource: [arn("kms", "key/*"), arn("kms", `alias/${p}`)],
      Condition: { StringEqualsIfExists: { "aws:ResourceTag/stack": stack } },
    },
    {
      Sid: "StackResources",
      Effect: "Allow",
      Action: [
        "secretsmanager:*",
        "lambda:*",
        "logs:*",
        "s3:*",
        "wafv2:*",
        "sns:*",
        "events:*",
        "states:*",
        "glue:*",
        "codebuild:*",
        "codepipeline:*",
      ],
      Resource: [
        arn("secretsmanager", `secret:${p}/*`),
        arn("lambda", `function:${p}-*`),
        arn("logs", `log-group:/aws/lambda/${p}-*`),
        arn("logs", `log-group:/aws/apigateway/${p}-*`),
        arn("logs", `log-group:/aws/codebuild/${p}-*`),
        arn("logs", `log-group:/aws/vendedlogs/states/${p}-*`),
        arn("logs", `log-group:/aws-glue/${p}-*`),
        `arn:aws:s3:::${p}-*`,
        arn("wafv2", `regional/webacl/${p}-*/*`),
        arn("wafv2", "regional/managedruleset/*/*"),
        arn("sns", `${p}-*`),
        arn("events", `rule/${p}-*`),
        arn("events", `event-bus/${p}-*`),
        arn("states", `stateMachine:${p}-*`),
        arn("glue", `job/${p}-*`),
        arn("glue", `database/${p.replace(/-/g, "_")}*`),
        arn("glue", `table/${p.replace(/-/g, "_")}*/*`),
        arn("glue", "catalog"),
        arn("codebuild", `project/${p}-*`),
        arn("codebuild", `report-group/${p}-*`),
        arn("codepipeline", `${p}-*`),
      ],
    },
    {
      Sid: "StackApi",
      Effect: "Allow",
      Action: [
        "apigateway:GET",
        "apigateway:POST",
        "apigateway:PUT",
        "apigateway:PATCH",
        "apigateway:DELETE",
      ],
      Resource: [
        `arn:aws:apigateway:${r}::/restapis`,
        `arn:aws:apigateway:${r}::/restapis/*`,
        `arn:aws:apigateway:${r}::/tags/*`,
      ],
    },
    {
      Sid: "ListLogGroups",
      Effect: "Allow",
      Action: "logs:DescribeLogGroups",
      Resource: arn("logs", "log-group:*"),
    },
    {
      Sid: "GlueSecurityConfigurations",
      Effect: "Allow",
      Action: [
        "glue:CreateSecurityConfiguration",
        "glue:GetSecurityConfiguration",
        "glue:DeleteSecurityConfiguration",
      ],
      Resource: "*",
    },
    {
      Sid: "PassSourceConnection",
      Effect: "Allow",
      Action: ["codestar-connections:PassConnection", "codestar-connections:GetConnection"],
      Resource: s.connectionArn,
    },
  ];
}
