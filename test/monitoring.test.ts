import * as assert from "node:assert/strict";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { BULK_STEPS } from "../components/bulkFunctions";

import program = require("../index");

import { AlertsTopic, alertsTopicStatements } from "../components/alertsTopic";
import { Monitoring } from "../components/monitoring";
import { parseStackConfig } from "../contracts/config";
import { checkAll, RULES } from "../policy/rules";
import {
  ACCOUNT_ID,
  doc,
  find,
  ofType,
  type Recorded,
  settle,
  stackConfig,
  useStack,
} from "./harness";
import { mockedGraph } from "./support/graph";

const base = `us-east-1:${ACCOUNT_ID}`;
const TOPIC = `arn:aws:sns:${base}:hoth-alerts`;

async function deploy(stack: string) {
  useStack(stack);
  program.compose(parseStackConfig(stack, stackConfig(stack)));
  await settle();
}

/** The thresholds of each stack's Pulumi.<stack>.yaml, written out independently. */
const EXPECTED = {
  dev: { rate: 0.05, p99: 5000, errors: 5, throttles: 5, period: 300, periods: 1 },
  test: { rate: 0.02, p99: 3000, errors: 2, throttles: 2, period: 300, periods: 1 },
  prod: { rate: 0.01, p99: 2000, errors: 1, throttles: 1, period: 60, periods: 3 },
} as const;

/** The recorded alarms, in the order of `names` (mocks record them as their inputs resolve). */
function alarmsInOrder(names: string[]): Recorded[] {
  const alarms = ofType("aws:cloudwatch/metricAlarm:MetricAlarm");
  assert.deepEqual(alarms.map((a) => a.inputs.name).sort(), [...names].sort());
  return names.map((n) => alarms.find((a) => a.inputs.name === n) as Recorded);
}

/** Alarm names of a stack, in signal order. */
const alarmNames = (p: string) => [
  `${p}-api-5xx-rate`,
  `${p}-api-latency-p99`,
  ...["authorizer", "app", "registry-export", ...BULK_STEPS.map((s) => `bulk-${s}`)].flatMap((f) =>
    ["errors", "throttles", "duration"].map((m) => `${p}-${f}-${m}`),
  ),
  ...["failed", "timed-out", "throttled"].map((m) => `${p}-migration-${m}`),
];

/** One alarm as a row: name, metric, dimensions, statistic, comparison, threshold, period x periods, missing data, actions. */
function row(a: Recorded) {
  const i = a.inputs;
  return [
    i.name,
    `${i.namespace} ${i.metricName}`,
    i.dimensions,
    i.statistic ?? i.extendedStatistic,
    i.comparisonOperator === "GreaterThanThreshold" ? ">" : ">=",
    i.threshold,
    `${i.evaluationPeriods}/${i.datapointsToAlarm} x ${i.period}`,
    i.treatMissingData,
    i.alarmActions,
    i.okActions,
  ];
}

describe("Monitoring", () => {
  for (const stack of ["dev", "test", "prod"] as const) {
    describe(`in ${stack}`, () => {
      const p = `hoth-${stack}`;
      const e = EXPECTED[stack];
      const machine = `arn:aws:states:${base}:stateMachine:${p}-migration`;
      before(() => deploy(stack));

      it("has exactly these alarms, each paging the alerts topic and reporting recovery", () => {
        const api = { ApiName: `${p}-api`, Stage: stack };
        const n = `${e.periods}/${e.periods} x ${e.period}`;
        // Duration alarms at 80 % of each timeout: 10 s (API functions), 300 s (registry export)
        const fn = (id: string, durationMs: number) => {
          const dims = { FunctionName: `${p}-${id}` };
          return [
            [`${p}-${id}-errors`, "AWS/Lambda Errors", dims, "Sum", ">=", e.errors, n],
            [`${p}-${id}-throttles`, "AWS/Lambda Throttles", dims, "Sum", ">=", e.throttles, n],
            [`${p}-${id}-duration`, "AWS/Lambda Duration", dims, "Maximum", ">", durationMs, n],
          ];
        };
        const sfn = (id: string, metric: string) => [
          `${p}-migration-${id}`,
          `AWS/States ${metric}`,
          { StateMachineArn: machine },
          "Sum",
          ">=",
          1,
          `1/1 x ${e.period}`,
        ];
        const expected = [
          [`${p}-api-5xx-rate`, "AWS/ApiGateway 5XXError", api, "Average", ">", e.rate, n],
          [`${p}-api-latency-p99`, "AWS/ApiGateway Latency", api, "p99", ">", e.p99, n],
          ...fn("authorizer", 8000),
          ...fn("app", 8000),
          ...fn("registry-export", 240_000),
          // the Bulk Data steps: 60 s, the download 900 s
          ...BULK_STEPS.flatMap((step) =>
            fn(`bulk-${step}`, step === "download" ? 720_000 : 48_000),
          ),
          sfn("failed", "ExecutionsFailed"),
          sfn("timed-out", "ExecutionsTimedOut"),
          sfn("throttled", "ExecutionThrottled"),
        ].map((r) => [...r, "notBreaching", [TOPIC], [TOPIC]]);
        assert.deepEqual(alarmsInOrder(alarmNames(p)).map(row), expected);
      });

      it("sends Glue job failures and failed secret reads to the alerts topic through EventBridge", () => {
        const glue = find("aws:cloudwatch/eventRule:EventRule", "hoth-glue-job-failures").inputs;
        assert.deepEqual(
          [glue.name, glue.state, JSON.parse(glue.eventPattern as string)],
          [
            `${p}-glue-job-failures`,
            "ENABLED",
            {
              source: ["aws.glue"],
              "detail-type": ["Glue Job State Change"],
              detail: {
                jobName: [`${p}-legacy-members-to-fhir`, `${p}-ingest-fhir`],
                state: ["FAILED", "TIMEOUT"],
              },
            },
          ],
        );
        const secrets = find(
          "aws:cloudwatch/eventRule:EventRule",
          "hoth-secret-read-failures",
        ).inputs;
        assert.equal(secrets.state, "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS");
        assert.deepEqual(JSON.parse(secrets.eventPattern as string).detail.requestParameters, {
          secretId: [
            { prefix: `${p}/` },
            { prefix: `arn:aws:secretsmanager:${base}:secret:${p}/` },
          ],
        });
        for (const id of ["glue-job-failures", "secret-read-failures"]) {
          const target = find("aws:cloudwatch/eventTarget:EventTarget", `hoth-${id}-to-sns`).inputs;
          assert.deepEqual([target.rule, target.arn], [`${p}-${id}`, TOPIC]);
        }
      });

      it("lets exactly its rules and alarms publish to the encrypted alerts topic", () => {
        const topic = find("aws:sns/topic:Topic", "hoth-alerts").inputs;
        assert.deepEqual(
          [topic.name, topic.kmsMasterKeyId],
          [`${p}-alerts`, `arn:aws:kms:${base}:key/hoth-key-key-id`],
        );
        const alarmArns = alarmNames(p).map((n) => `arn:aws:cloudwatch:${base}:alarm:${n}`);
        const rule = (n: string) => `arn:aws:events:${base}:rule/${p}-${n}`;
        assert.deepEqual(
          doc(find("aws:sns/topicPolicy:TopicPolicy", "hoth-alerts-policy")).Statement,
          [
            {
              Sid: "DenyInsecureTransport",
              Effect: "Deny",
              Principal: "*",
              Action: "sns:*",
              Resource: [TOPIC],
              Condition: { Bool: { "aws:SecureTransport": "false" } },
            },
            {
              Sid: "PublishFromEventRules",
              Effect: "Allow",
              Principal: { Service: "events.amazonaws.com" },
              Action: "sns:Publish",
              Resource: TOPIC,
              Condition: {
                ArnEquals: {
                  "aws:SourceArn": [
                    rule("migration-failures"),
                    rule("glue-job-failures"),
                    rule("secret-read-failures"),
                  ],
                },
                StringEquals: { "aws:SourceAccount": ACCOUNT_ID },
              },
            },
            {
              Sid: "PublishFromAlarms",
              Effect: "Allow",
              Principal: { Service: "cloudwatch.amazonaws.com" },
              Action: "sns:Publish",
              Resource: TOPIC,
              Condition: {
                ArnEquals: { "aws:SourceArn": alarmArns },
                StringEquals: { "aws:SourceAccount": ACCOUNT_ID },
              },
            },
          ],
        );
        assert.equal(alarmArns.length, alarmNames(p).length);
      });

      it("has one dashboard whose graphs show exactly the alarms' metrics and the alert rules'", () => {
        const dashboard = find("aws:cloudwatch/dashboard:Dashboard", "hoth-dashboard").inputs;
        assert.equal(dashboard.dashboardName, `${p}-operations`);
        const { widgets } = JSON.parse(dashboard.dashboardBody as string) as {
          widgets: { type: string; properties: { metrics?: unknown[][]; region?: string } }[];
        };
        const shown = widgets
          .filter((w) => w.type === "metric")
          .map((w) => {
            assert.equal(w.properties.region, "us-east-1");
            assert.equal(w.properties.metrics?.length, 1);
            return JSON.stringify(w.properties.metrics?.[0]);
          });
        const alarmed = alarmsInOrder(alarmNames(p)).map((a) =>
          JSON.stringify([
            a.inputs.namespace,
            a.inputs.metricName,
            ...Object.entries(a.inputs.dimensions as Record<string, string>).flat(),
            { stat: a.inputs.statistic ?? a.inputs.extendedStatistic, period: a.inputs.period },
          ]),
        );
        const rules = ["glue-job-failures", "secret-read-failures"].map((id) =>
          JSON.stringify([
            "AWS/Events",
            "TriggeredRules",
            "RuleName",
            `${p}-${id}`,
            { stat: "Sum", period: 300 },
          ]),
        );
        assert.deepEqual(shown, [...alarmed, ...rules]);
      });
    });
  }

  it("makes the error-alarms rule fail for a function added without alarms, and pass once it (and its DLQ) is listed", async () => {
    // Prepare: the dev program plus one function nobody passed to Monitoring
    await deploy("dev");
    const fn = () =>
      new aws.lambda.Function("extra", {
        name: "hoth-dev-extra",
        role: "arn:aws:iam::123456789012:role/x",
        runtime: "nodejs22.x",
        handler: "index.handler",
        code: new pulumi.asset.AssetArchive({}),
      });
    fn();
    await settle();
    // Act
    const errorAlarms = RULES.find((r) => r.name === "error-alarms");
    const violations = errorAlarms?.check(mockedGraph()).map((v) => v.message);
    // Assess
    assert.deepEqual(violations, [
      "function extra has no alarm with an action on AWS/Lambda Errors",
    ]);

    // Prepare: the same function, listed
    useStack("dev");
    const extra = fn();
    const alerts = new AlertsTopic("x", {
      prefix: "hoth-dev",
      accountId: ACCOUNT_ID,
      keyArn: "arn:k",
    });
    new Monitoring("x", {
      prefix: "hoth-dev",
      region: "us-east-1",
      alerts,
      functions: [{ id: "extra", name: extra.name, timeoutSeconds: 3 }],
      stateMachines: [],
      deadLetterQueues: [{ id: "extra", name: "hoth-dev-extra-dlq" }],
      thresholds: parseStackConfig("dev", stackConfig("dev")).alarms,
    });
    alerts.seal();
    await settle();
    // Act / Assess
    assert.deepEqual(errorAlarms?.check(mockedGraph()), []);
    const [, , duration, dlq] = alarmsInOrder([
      "hoth-dev-extra-errors",
      "hoth-dev-extra-throttles",
      "hoth-dev-extra-duration",
      "hoth-dev-extra-dlq-visible",
    ]);
    assert.equal(duration.inputs.threshold, 2400);
    assert.deepEqual(row(dlq), [
      "hoth-dev-extra-dlq-visible",
      "AWS/SQS ApproximateNumberOfMessagesVisible",
      { QueueName: "hoth-dev-extra-dlq" },
      "Maximum",
      ">=",
      1,
      "1/1 x 300",
      "notBreaching",
      ["arn:aws:sns:us-east-1:123456789012:x-alerts"],
      ["arn:aws:sns:us-east-1:123456789012:x-alerts"],
    ]);
    // The whole dev graph, meanwhile, passes every rule.
    await deploy("dev");
    assert.deepEqual(checkAll(mockedGraph()), []);
  });

  it("lets a single publisher of each kind publish by its exact ARN, and no kind without publishers", () => {
    const topic = "arn:aws:sns:us-east-1:123456789012:t";
    const statements = alertsTopicStatements(topic, ACCOUNT_ID, ["arn:aws:events:r"], []);
    assert.deepEqual(
      statements.map((st) => [st.Sid, st.Condition]),
      [
        ["DenyInsecureTransport", { Bool: { "aws:SecureTransport": "false" } }],
        [
          "PublishFromEventRules",
          {
            ArnEquals: { "aws:SourceArn": "arn:aws:events:r" },
            StringEquals: { "aws:SourceAccount": ACCOUNT_ID },
          },
        ],
      ],
    );
  });

  it("refuses publishers added after the topic policy is written, and a second policy", () => {
    useStack("dev");
    const alerts = new AlertsTopic("late", {
      prefix: "hoth-dev",
      accountId: ACCOUNT_ID,
      keyArn: "arn:k",
    });
    alerts.seal();
    const rule = new aws.cloudwatch.EventRule("late-rule", { eventPattern: "{}" });
    assert.throws(() => alerts.routeRule(rule, "late-target", {}), {
      message: "routeRule() after seal(): add every publisher before seal()",
    });
    assert.throws(() => alerts.allowAlarms([]), {
      message: "allowAlarms() after seal(): add every publisher before seal()",
    });
    assert.throws(() => alerts.seal(), {
      message: "seal() after seal(): add every publisher before seal()",
    });
  });
});
