import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";

import program = require("../index");

import { parseStackConfig } from "../contracts/config";
import { ACCOUNT_ID, doc, find, ofType, settle, stackConfig, useStack } from "./harness";

const ROOT = path.join(__dirname, "..");
const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT_ID}:key/hoth-key-key-id`;
const CONNECTION = `arn:aws:codeconnections:us-east-1:${ACCOUNT_ID}:connection/00000000-0000-0000-0000-000000000000`;

async function deploy(stack: string) {
  useStack(stack);
  program.compose(parseStackConfig(stack, stackConfig(stack)));
  await settle();
}

type Stage = { name: string; actions: Record<string, unknown>[] };
const stagesOf = () =>
  find("aws:codepipeline/pipeline:Pipeline", "hoth-pipeline").inputs.stages as Stage[];

describe("DeliveryPipeline", () => {
  for (const [stack, branch, names] of [
    ["dev", "develop", ["Source", "Build", "Deploy"]],
    ["test", "release", ["Source", "Build", "Deploy"]],
    ["prod", "main", ["Source", "Build", "Approval", "Deploy"]],
  ] as const) {
    it(`in ${stack}: runs ${names.join(" -> ")} on pushes to ${branch}`, async () => {
      await deploy(stack);
      const pipeline = find("aws:codepipeline/pipeline:Pipeline", "hoth-pipeline").inputs;
      assert.deepEqual(
        [pipeline.name, pipeline.pipelineType, pipeline.executionMode],
        [`hoth-${stack}-delivery`, "V2", "QUEUED"],
      );
      assert.deepEqual(
        stagesOf().map((s) => s.name),
        names,
      );
      assert.deepEqual(pipeline.triggers, [
        {
          providerType: "CodeStarSourceConnection",
          gitConfiguration: {
            sourceActionName: "Source",
            pushes: [{ branches: { includes: [branch] } }],
          },
        },
      ]);
      assert.deepEqual(pipeline.artifactStores, [
        {
          location: `hoth-${stack}-pipeline-artifacts`,
          type: "S3",
          encryptionKey: { id: KEY_ARN, type: "KMS" },
        },
      ]);
    });
  }

  describe("in prod", () => {
    before(() => deploy("prod"));

    it("sources from the CodeStar connection and builds then deploys with CodeBuild", () => {
      const [source, build, approval, deployStage] = stagesOf().map((s) => s.actions[0]);
      assert.deepEqual(
        [source.category, source.provider, source.configuration],
        [
          "Source",
          "CodeStarSourceConnection",
          {
            ConnectionArn: CONNECTION,
            FullRepositoryId: "example-org/hoth",
            BranchName: "main",
            OutputArtifactFormat: "CODE_ZIP",
            DetectChanges: "false",
          },
        ],
      );
      assert.deepEqual(
        [build.provider, build.configuration],
        ["CodeBuild", { ProjectName: "hoth-prod-build" }],
      );
      assert.deepEqual([approval.category, approval.provider], ["Approval", "Manual"]);
      assert.equal(
        (approval.configuration as Record<string, string>).NotificationArn,
        `arn:aws:sns:us-east-1:${ACCOUNT_ID}:hoth-notifications`,
      );
      assert.deepEqual(
        [deployStage.provider, deployStage.configuration, deployStage.outputArtifacts],
        ["CodeBuild", { ProjectName: "hoth-prod-deploy" }, ["preview"]],
      );
    });

    it("gives the deploy project the stack, its own state prefix and the pinned CLI", () => {
      const project = find("aws:codebuild/project:Project", "hoth-deploy").inputs;
      const env = project.environment as {
        environmentVariables: { name: string; value: string }[];
        image: string;
      };
      assert.deepEqual(Object.fromEntries(env.environmentVariables.map((v) => [v.name, v.value])), {
        CI: "true",
        STACK: "prod",
        PULUMI_BACKEND_URL: "s3://hoth-pulumi-state-123456789012/hoth-prod",
        PULUMI_VERSION: "3.132.0",
        PULUMI_SHA256: "107129c599230b3cb6624c085182099ab181f0c3f54223a34282b9703a5699fa",
        AWS_REGION: "us-east-1",
      });
      assert.deepEqual(project.source, { type: "CODEPIPELINE", buildspec: "buildspec/deploy.yml" });
      assert.deepEqual([project.encryptionKey, project.buildTimeout], [KEY_ARN, 60]);
      assert.equal(find("aws:codebuild/project:Project", "hoth-build").inputs.buildTimeout, 40);
    });

    it("lets the build role read the source and write logs and reports, and nothing else", () => {
      const statements = doc(find("aws:iam/rolePolicy:RolePolicy", "hoth-build-policy")).Statement;
      assert.deepEqual(statements, [
        {
          Sid: "WriteLogs",
          Effect: "Allow",
          Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
          Resource: `arn:aws:logs:us-east-1:${ACCOUNT_ID}:log-group:/aws/codebuild/hoth-prod-build:*`,
        },
        {
          Sid: "ReadSource",
          Effect: "Allow",
          Action: ["s3:GetObject", "s3:GetObjectVersion"],
          Resource: "arn:aws:s3:::hoth-prod-pipeline-artifacts/*",
        },
        {
          Sid: "ArtifactsKey",
          Effect: "Allow",
          Action: ["kms:Decrypt", "kms:GenerateDataKey"],
          Resource: KEY_ARN,
          Condition: { StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" } },
        },
        {
          Sid: "TestReports",
          Effect: "Allow",
          Action: [
            "codebuild:CreateReportGroup",
            "codebuild:CreateReport",
            "codebuild:UpdateReport",
            "codebuild:BatchPutTestCases",
          ],
          Resource: `arn:aws:codebuild:us-east-1:${ACCOUNT_ID}:report-group/hoth-prod-build-*`,
        },
      ]);
      const writes = statements
        .flatMap((s: { Action: string | string[] }) => [s.Action].flat())
        .filter((a: string) =>
          /^(iam|lambda|apigateway|kms:Create|s3:Put|secretsmanager|codepipeline):?/.test(a),
        );
      assert.deepEqual(writes, []);
    });

    it("confines the deploy role to the stack's prefix, its state prefix and the secrets key", () => {
      const statements = doc(find("aws:iam/rolePolicy:RolePolicy", "hoth-deploy-policy"))
        .Statement as {
        Sid: string;
        Action: string | string[];
        Resource: string | string[];
        Condition?: unknown;
      }[];
      const bySid = Object.fromEntries(statements.map((s) => [s.Sid, s]));
      assert.deepEqual(
        bySid.StateObjects.Resource,
        "arn:aws:s3:::hoth-pulumi-state-123456789012/hoth-prod/*",
      );
      assert.deepEqual(bySid.StateList.Condition, {
        StringLike: { "s3:prefix": ["hoth-prod/*", "hoth-prod"] },
      });
      assert.deepEqual(bySid.SecretsProvider, {
        Sid: "SecretsProvider",
        Effect: "Allow",
        Action: ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
        Resource: "arn:aws:kms:us-east-1:123456789012:key/11111111-1111-1111-1111-111111111111",
      });
      assert.deepEqual(
        bySid.PassStackRoles.Resource,
        `arn:aws:iam::${ACCOUNT_ID}:role/hoth-prod-*`,
      );
      assert.deepEqual(bySid.StackRoles.Resource, `arn:aws:iam::${ACCOUNT_ID}:role/hoth-prod-*`);
      // Every resource of every statement names this stack, its state, its key or is on the allow-list.
      const allowedStar = new Set(["WhoAmI", "CreateKeys", "GlueSecurityConfigurations"]);
      for (const s of statements) {
        for (const r of [s.Resource].flat()) {
          if (r === "*") {
            assert.ok(allowedStar.has(s.Sid), `${s.Sid} uses Resource "*"`);
            continue;
          }
          assert.match(
            r,
            /hoth-prod|hoth_prod|hoth-pulumi-state-123456789012|key\/|managedruleset|:catalog$|apigateway:us-east-1::\/(restapis|tags)|log-group:\*$|connection\//,
            `${s.Sid}: ${r}`,
          );
        }
      }
      assert.deepEqual(
        statements.map((s) => s.Sid),
        [
          "WriteLogs",
          "ReadSource",
          "ArtifactsKey",
          "PreviewArtifact",
          "StateList",
          "StateObjects",
          "SecretsProvider",
          "WhoAmI",
          "StackRoles",
          "PassStackRoles",
          "CreateKeys",
          "StackKeys",
          "StackResources",
          "StackApi",
          "ListLogGroups",
          "GlueSecurityConfigurations",
          "PassSourceConnection",
        ],
      );
    });

    it("lets the pipeline role use only its connection, its projects, its bucket and its topic", () => {
      const statements = doc(
        find("aws:iam/rolePolicy:RolePolicy", "hoth-pipeline-policy"),
      ).Statement;
      assert.deepEqual(
        statements.map((s: { Sid: string; Resource: unknown }) => [s.Sid, s.Resource]),
        [
          ["Artifacts", "arn:aws:s3:::hoth-prod-pipeline-artifacts/*"],
          ["ArtifactsKey", KEY_ARN],
          ["Source", CONNECTION],
          [
            "RunProjects",
            [
              `arn:aws:codebuild:us-east-1:${ACCOUNT_ID}:hoth-build`,
              `arn:aws:codebuild:us-east-1:${ACCOUNT_ID}:hoth-deploy`,
            ],
          ],
          ["NotifyApprovers", `arn:aws:sns:us-east-1:${ACCOUNT_ID}:hoth-notifications`],
        ],
      );
    });

    it("encrypts artifacts, logs and notifications with the stack key", () => {
      const sse = find(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "hoth-artifacts-sse",
      ).inputs.rules as { applyServerSideEncryptionByDefault: unknown }[];
      assert.deepEqual(sse[0].applyServerSideEncryptionByDefault, {
        sseAlgorithm: "aws:kms",
        kmsMasterKeyId: KEY_ARN,
      });
      assert.equal(
        find("aws:sns/topic:Topic", "hoth-notifications").inputs.kmsMasterKeyId,
        KEY_ARN,
      );
      for (const id of ["build", "deploy"]) {
        const group = find("aws:cloudwatch/logGroup:LogGroup", `hoth-${id}-logs`).inputs;
        assert.deepEqual(
          [group.name, group.kmsKeyId, group.retentionInDays],
          [`/aws/codebuild/hoth-prod-${id}`, KEY_ARN, 365],
        );
      }
    });

    it("publishes failed executions to the topic, which only that rule may publish to", () => {
      const rule = find("aws:cloudwatch/eventRule:EventRule", "hoth-failures").inputs;
      assert.deepEqual(JSON.parse(rule.eventPattern as string), {
        source: ["aws.codepipeline"],
        "detail-type": ["CodePipeline Pipeline Execution State Change"],
        detail: { pipeline: ["hoth-prod-delivery"], state: ["FAILED"] },
      });
      const target = find("aws:cloudwatch/eventTarget:EventTarget", "hoth-failures-to-sns").inputs;
      assert.equal(target.arn, `arn:aws:sns:us-east-1:${ACCOUNT_ID}:hoth-notifications`);
      const topicPolicy = doc(
        find("aws:sns/topicPolicy:TopicPolicy", "hoth-notifications-policy"),
      ).Statement;
      assert.deepEqual(topicPolicy[0].Condition, {
        ArnEquals: {
          "aws:SourceArn": `arn:aws:events:us-east-1:${ACCOUNT_ID}:rule/hoth-prod-pipeline-failures`,
        },
      });
      const key = doc(find("aws:kms/key:Key", "hoth-key")).Statement;
      assert.deepEqual(
        key.find((st: { Sid: string }) => st.Sid === "ServicesWritingEncryptedData")?.Principal,
        { Service: ["events.amazonaws.com", "cloudwatch.amazonaws.com"] },
      );
    });
  });

  it("is left out of a stack without pipeline settings", async () => {
    useStack("dev");
    const config = stackConfig("dev");
    delete config["hoth:pipeline"];
    program.compose(parseStackConfig("dev", config));
    await settle();
    assert.deepEqual(ofType("aws:codepipeline/pipeline:Pipeline"), []);
  });
});

describe("buildspecs", () => {
  const spec = (name: string) => parse(fs.readFileSync(path.join(ROOT, "buildspec", name), "utf8"));
  const scripts = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"))
    .scripts as Record<string, string>;
  const commands = (s: { phases: Record<string, { commands: string[] }> }) =>
    Object.values(s.phases).flatMap((p) => p.commands);

  it("build: runs exactly the README's setup and test commands, and reports JUnit", () => {
    const build = spec("build.yml");
    assert.deepEqual(commands(build), ["npm run setup", "npm test"]);
    assert.deepEqual(build.reports.junit, {
      files: ["reports/mocha.xml", "reports/pytest.xml"],
      "file-format": "JUNITXML",
    });
    const ci = fs.readFileSync(path.join(ROOT, ".ci", "run"), "utf8");
    assert.match(ci, /^npm test$/m);
  });

  it("deploy: installs the pinned CLI, previews with the policy pack, then runs pulumi up --yes", () => {
    const deploy = spec("deploy.yml");
    assert.deepEqual(commands(deploy), [
      "npm ci --no-audit --no-fund",
      "npm run pulumi:install",
      "npm run deploy:login",
      "npm run deploy:preview",
      "npm run deploy:up",
    ]);
    for (const c of commands(deploy).filter((x) => x.startsWith("npm run "))) {
      assert.ok(scripts[c.slice(8)], `package.json has no script ${c.slice(8)}`);
    }
    const script = fs.readFileSync(path.join(ROOT, "scripts", "deploy.sh"), "utf8");
    assert.match(script, /preview --stack "\$STACK" --diff --policy-pack policy/);
    assert.match(script, /up --stack "\$STACK" --yes --skip-preview --policy-pack policy/);
    assert.deepEqual(deploy.artifacts.files, ["reports/preview-*.txt"]);
  });

  it("pulumi:install refuses a tarball whose SHA-256 differs from the pin and installs a matching one", () => {
    // Prepare: a fake release served from a file:// base in a scratch copy of the script
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hoth-cli-"));
    fs.mkdirSync(path.join(dir, "scripts"));
    fs.copyFileSync(
      path.join(ROOT, "scripts", "install-pulumi.sh"),
      path.join(dir, "scripts", "install-pulumi.sh"),
    );
    const release = path.join(dir, "release", "v9.9.9");
    fs.mkdirSync(path.join(dir, "pkg", "pulumi"), { recursive: true });
    fs.mkdirSync(release, { recursive: true });
    fs.writeFileSync(path.join(dir, "pkg", "pulumi", "pulumi"), "#!/bin/sh\necho v9.9.9\n", {
      mode: 0o755,
    });
    const tarball = path.join(release, "pulumi-v9.9.9-linux-x64.tar.gz");
    spawnSync("tar", ["-czf", tarball, "-C", path.join(dir, "pkg"), "pulumi"]);
    const sha = crypto.createHash("sha256").update(fs.readFileSync(tarball)).digest("hex");
    const run = (pin: string) =>
      spawnSync("bash", [path.join(dir, "scripts", "install-pulumi.sh")], {
        env: {
          ...process.env,
          PULUMI_VERSION: "9.9.9",
          PULUMI_SHA256: pin,
          PULUMI_DOWNLOAD_BASE: `file://${dir}/release`,
        },
        encoding: "utf8",
      });
    // Act
    const bad = run("0".repeat(64));
    const badInstalled = fs.existsSync(path.join(dir, ".pulumi-cli", "pulumi"));
    const good = run(sha);
    // Assess
    assert.notEqual(bad.status, 0);
    assert.equal(badInstalled, false);
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /v9\.9\.9/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
