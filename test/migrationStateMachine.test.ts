import * as assert from "node:assert/strict";

import program = require("../index");

import { AlertsTopic } from "../components/alertsTopic";
import { MigrationStateMachine } from "../components/migrationStateMachine";
import { parseStackConfig } from "../contracts/config";
import { ACCOUNT_ID, doc, find, settle, stackConfig, useStack } from "./harness";

const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT_ID}:key/hoth-key-key-id`;
const base = `us-east-1:${ACCOUNT_ID}`;

async function deploy(stack: string) {
  useStack(stack);
  program.compose(parseStackConfig(stack, stackConfig(stack)));
  await settle();
}

describe("MigrationStateMachine", () => {
  describe("in dev", () => {
    before(() => deploy("dev"));

    it("is a Standard workflow with X-Ray and KMS-encrypted logs that leave execution data out", () => {
      const machine = find("aws:sfn/stateMachine:StateMachine", "hoth-machine").inputs;
      assert.deepEqual(
        [machine.name, machine.type, machine.tracingConfiguration],
        ["hoth-dev-migration", "STANDARD", { enabled: true }],
      );
      assert.deepEqual(machine.loggingConfiguration, {
        logDestination: `arn:aws:logs:${base}:log-group:/aws/vendedlogs/states/hoth-dev-migration:*`,
        includeExecutionData: false,
        level: "ALL",
      });
      const logs = find("aws:cloudwatch/logGroup:LogGroup", "hoth-migration-logs").inputs;
      assert.deepEqual([logs.kmsKeyId, logs.retentionInDays], [KEY_ARN, 14]);
      const definition = JSON.parse(machine.definition as string);
      assert.equal(
        definition.States.LegacyToFhir.Parameters.JobName,
        "hoth-dev-legacy-members-to-fhir",
      );
      assert.equal(definition.States.IngestFhir.Parameters.JobName, "hoth-dev-ingest-fhir");
      assert.equal(definition.States.IngestFhir.TimeoutSeconds, 3600);
      assert.equal(
        definition.States.PublishSucceeded.Parameters.Entries[0].EventBusName,
        "hoth-dev-migrations",
      );
    });

    it("lets its role run only the two jobs, invoke only the registry export and the bulk functions, and publish only to the project's bus", () => {
      const statements = doc(find("aws:iam/rolePolicy:RolePolicy", "hoth-policy")).Statement;
      assert.deepEqual(statements.slice(0, 3), [
        {
          Sid: "RunGlueJobs",
          Effect: "Allow",
          Action: ["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"],
          Resource: [
            `arn:aws:glue:${base}:job/hoth-dev-legacy-members-to-fhir`,
            `arn:aws:glue:${base}:job/hoth-dev-ingest-fhir`,
          ],
        },
        {
          Sid: "InvokeTaskFunctions",
          Effect: "Allow",
          Action: "lambda:InvokeFunction",
          Resource: [
            `arn:aws:lambda:${base}:function:hoth-dev-registry-export`,
            ...["initiate", "poll", "download", "check", "delete"].map(
              (s) => `arn:aws:lambda:${base}:function:hoth-dev-bulk-${s}`,
            ),
          ],
        },
        {
          Sid: "PublishEvents",
          Effect: "Allow",
          Action: "events:PutEvents",
          Resource: `arn:aws:events:${base}:event-bus/hoth-dev-migrations`,
        },
      ]);
      assert.deepEqual(
        statements.slice(3).map((s: { Sid: string; Resource: string }) => [s.Sid, s.Resource]),
        [
          ["DeliverLogs", "*"],
          ["WriteTraces", "*"],
        ],
      );
      const trust = doc(find("aws:iam/role:Role", "hoth-role"), "assumeRolePolicy").Statement[0];
      assert.deepEqual(trust.Principal, { Service: "states.amazonaws.com" });
    });

    it("sends MigrationFailed events from its bus to the stack's encrypted alerts topic", () => {
      const rule = find("aws:cloudwatch/eventRule:EventRule", "hoth-migration-failures").inputs;
      assert.equal(rule.eventBusName, "hoth-dev-migrations");
      assert.deepEqual(JSON.parse(rule.eventPattern as string), {
        source: ["hoth.migration"],
        "detail-type": ["MigrationFailed"],
      });
      const target = find(
        "aws:cloudwatch/eventTarget:EventTarget",
        "hoth-migration-failures-to-sns",
      ).inputs;
      assert.equal(target.arn, `arn:aws:sns:${base}:hoth-alerts`);
      assert.equal(find("aws:sns/topic:Topic", "hoth-alerts").inputs.kmsMasterKeyId, KEY_ARN);
      const topicPolicy = doc(find("aws:sns/topicPolicy:TopicPolicy", "hoth-alerts-policy"))
        .Statement[1];
      assert.equal(topicPolicy.Sid, "PublishFromEventRules");
      assert.ok(
        topicPolicy.Condition.ArnEquals["aws:SourceArn"].includes(
          `arn:aws:events:${base}:rule/hoth-dev-migration-failures`,
        ),
      );
    });

    it("has its schedule switched off, and the schedule may start only this state machine", () => {
      const rule = find("aws:cloudwatch/eventRule:EventRule", "hoth-schedule").inputs;
      assert.deepEqual([rule.scheduleExpression, rule.state], ["cron(0 2 * * ? *)", "DISABLED"]);
      const start = doc(find("aws:iam/rolePolicy:RolePolicy", "hoth-schedule-policy")).Statement;
      assert.deepEqual(start, [
        {
          Sid: "StartMigration",
          Effect: "Allow",
          Action: "states:StartExecution",
          Resource: `arn:aws:states:${base}:stateMachine:hoth-dev-migration`,
        },
      ]);
      const target = find("aws:cloudwatch/eventTarget:EventTarget", "hoth-schedule-target").inputs;
      assert.deepEqual(target.inputTransformer, {
        inputPaths: { id: "$.id" },
        inputTemplate:
          '{"runId":"scheduled-<id>","org":"example-health","source":"fhir","inputPrefix":"exports/latest/"}',
      });
    });
  });

  for (const [stack, level, timeout] of [
    ["test", "ERROR", 3600],
    ["prod", "ERROR", 7200],
  ] as const) {
    it(`in ${stack}: schedules runs, logs at ${level}, times jobs out at ${timeout} s`, async () => {
      await deploy(stack);
      assert.equal(
        find("aws:cloudwatch/eventRule:EventRule", "hoth-schedule").inputs.state,
        "ENABLED",
      );
      const machine = find("aws:sfn/stateMachine:StateMachine", "hoth-machine").inputs;
      assert.equal((machine.loggingConfiguration as { level: string }).level, level);
      assert.equal(
        JSON.parse(machine.definition as string).States.LegacyToFhir.TimeoutSeconds,
        timeout,
      );
    });
  }

  it("refuses a schedule that is on without an expression, naming the fix", () => {
    useStack("dev");
    assert.throws(
      () =>
        new MigrationStateMachine("m", {
          prefix: "hoth-dev",
          region: "us-east-1",
          accountId: ACCOUNT_ID,
          keyArn: KEY_ARN,
          lakeBucket: "lake",
          legacyJob: { name: "l", arn: "arn:l" },
          ingestJob: { name: "i", arn: "arn:i" },
          registryExport: { arn: "arn:e", timeoutSeconds: 300 },
          jobTimeoutSeconds: 60,
          logRetentionDays: 14,
          schedule: { enabled: true, org: "o", inputPrefix: "p/" },
          alerts: new AlertsTopic("a", {
            prefix: "hoth-dev",
            accountId: ACCOUNT_ID,
            keyArn: KEY_ARN,
          }),
        }),
      {
        message:
          "Either [schedule.expression] or [schedule.enabled: false] must be set for MigrationStateMachine 'm'",
      },
    );
  });
});
