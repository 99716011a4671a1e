import * as assert from "node:assert/strict";
import fc from "fast-check";
import {
  type AlarmThresholds,
  alarmArgs,
  dashboardBody,
  type MetricSignal,
  type SignalSources,
  signals,
} from "../components/signals";

const THRESHOLDS: AlarmThresholds = {
  api5xxRatePercent: 2,
  apiLatencyP99Ms: 3000,
  lambdaErrors: 3,
  lambdaThrottles: 4,
  lambdaDurationPercentOfTimeout: 80,
  periodSeconds: 300,
  evaluationPeriods: 2,
};

const SOURCES: SignalSources<string> = {
  prefix: "hoth-x",
  api: { name: "hoth-x-api", stage: "x" },
  functions: [{ id: "app", name: "hoth-x-app", timeoutSeconds: 10 }],
  stateMachines: [{ id: "flow", arn: "arn:aws:states:us-east-1:1:stateMachine:flow" }],
  deadLetterQueues: [{ id: "bulk", name: "hoth-x-bulk-dlq" }],
  glueJobs: ["job-a", "job-b"],
  secrets: {
    namePrefix: "hoth-x/",
    arnPrefix: "arn:aws:secretsmanager:us-east-1:1:secret:hoth-x/",
  },
  thresholds: THRESHOLDS,
};

const metricSignals = (list: ReturnType<typeof signals<string>>) =>
  list.filter((s): s is MetricSignal<string> => s.kind === "metric");

describe("signals (the one list of alarms, alert rules and dashboard widgets)", () => {
  it("derives every metric alarm from the sources and the thresholds", () => {
    // Act
    const list = metricSignals(signals(SOURCES));
    // Assess: id, metric, dimension, statistic, comparison, threshold, periods, missing data
    assert.deepEqual(
      list.map((s) => [
        s.id,
        `${s.namespace} ${s.metricName}`,
        Object.values(s.dimensions).join(","),
        s.statistic,
        s.comparison === "GreaterThanThreshold" ? ">" : ">=",
        s.threshold,
        s.evaluationPeriods,
        s.treatMissingData,
      ]),
      [
        [
          "api-5xx-rate",
          "AWS/ApiGateway 5XXError",
          "hoth-x-api,x",
          "Average",
          ">",
          0.02,
          2,
          "notBreaching",
        ],
        [
          "api-latency-p99",
          "AWS/ApiGateway Latency",
          "hoth-x-api,x",
          "p99",
          ">",
          3000,
          2,
          "notBreaching",
        ],
        ["app-errors", "AWS/Lambda Errors", "hoth-x-app", "Sum", ">=", 3, 2, "notBreaching"],
        ["app-throttles", "AWS/Lambda Throttles", "hoth-x-app", "Sum", ">=", 4, 2, "notBreaching"],
        [
          "app-duration",
          "AWS/Lambda Duration",
          "hoth-x-app",
          "Maximum",
          ">",
          8000,
          2,
          "notBreaching",
        ],
        [
          "flow-failed",
          "AWS/States ExecutionsFailed",
          SOURCES.stateMachines[0].arn,
          "Sum",
          ">=",
          1,
          1,
          "notBreaching",
        ],
        [
          "flow-timed-out",
          "AWS/States ExecutionsTimedOut",
          SOURCES.stateMachines[0].arn,
          "Sum",
          ">=",
          1,
          1,
          "notBreaching",
        ],
        [
          "flow-throttled",
          "AWS/States ExecutionThrottled",
          SOURCES.stateMachines[0].arn,
          "Sum",
          ">=",
          1,
          1,
          "notBreaching",
        ],
        [
          "bulk-dlq-visible",
          "AWS/SQS ApproximateNumberOfMessagesVisible",
          "hoth-x-bulk-dlq",
          "Maximum",
          ">=",
          1,
          1,
          "notBreaching",
        ],
      ],
    );
    assert.ok(list.every((s) => s.periodSeconds === 300 && s.missingDataReason.length > 10));
  });

  it("routes Glue job failures and failed secret reads through EventBridge rules", () => {
    const events = signals(SOURCES).filter((s) => s.kind === "event");
    assert.deepEqual(
      events.map((s) => (s.kind === "event" ? [s.id, s.ruleState, s.eventPattern] : [])),
      [
        [
          "glue-job-failures",
          "ENABLED",
          {
            source: ["aws.glue"],
            "detail-type": ["Glue Job State Change"],
            detail: { jobName: ["job-a", "job-b"], state: ["FAILED", "TIMEOUT"] },
          },
        ],
        [
          "secret-read-failures",
          "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS",
          {
            source: ["aws.secretsmanager"],
            "detail-type": ["AWS API Call via CloudTrail"],
            detail: {
              eventSource: ["secretsmanager.amazonaws.com"],
              eventName: ["GetSecretValue"],
              errorCode: [{ exists: true }],
              requestParameters: {
                secretId: [
                  { prefix: "hoth-x/" },
                  { prefix: "arn:aws:secretsmanager:us-east-1:1:secret:hoth-x/" },
                ],
              },
            },
          },
        ],
      ],
    );
  });

  it("gives every function added to the sources its three alarms, and nothing for absent sources", () => {
    const more = signals({
      ...SOURCES,
      api: undefined,
      functions: [
        { id: "a", name: "fa", timeoutSeconds: 1 },
        { id: "b", name: "fb", timeoutSeconds: 900 },
      ],
      stateMachines: [],
      deadLetterQueues: [],
      glueJobs: [],
      secrets: undefined,
    });
    assert.deepEqual(
      more.map((s) => [s.id, s.kind === "metric" ? s.threshold : undefined]),
      [
        ["a-errors", 3],
        ["a-throttles", 4],
        ["a-duration", 800],
        ["b-errors", 3],
        ["b-throttles", 4],
        ["b-duration", 720_000],
      ],
    );
  });

  it("refuses two signals with one id, naming it", () => {
    assert.throws(
      () =>
        signals({
          ...SOURCES,
          functions: [
            { id: "app", name: "one", timeoutSeconds: 5 },
            { id: "app", name: "two", timeoutSeconds: 5 },
          ],
        }),
      { message: "Signal ids must be unique; repeated: app-errors, app-throttles, app-duration" },
    );
  });

  it("turns a metric signal into alarm arguments that page and report recovery", () => {
    const [rate, p99] = metricSignals(signals(SOURCES));
    const topic = "arn:aws:sns:us-east-1:1:hoth-x-alerts";
    assert.deepEqual(alarmArgs("hoth-x", rate, topic), {
      name: "hoth-x-api-5xx-rate",
      alarmDescription:
        "API 5XX error rate: > 0.02 for 2 x 300s. Missing data: notBreaching (no requests in the period is not an error).",
      namespace: "AWS/ApiGateway",
      metricName: "5XXError",
      dimensions: { ApiName: "hoth-x-api", Stage: "x" },
      statistic: "Average",
      period: 300,
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      comparisonOperator: "GreaterThanThreshold",
      threshold: 0.02,
      treatMissingData: "notBreaching",
      alarmActions: [topic],
      okActions: [topic],
    });
    // Percentiles are extended statistics; CloudWatch refuses them as `statistic`.
    const args = alarmArgs("hoth-x", p99, topic);
    assert.equal((args as { extendedStatistic?: string }).extendedStatistic, "p99");
    assert.equal("statistic" in args, false);
  });

  it("lays out one dashboard widget per signal, showing exactly that signal's metric", () => {
    // Prepare
    const list = signals(SOURCES);
    // Act
    const { widgets } = dashboardBody("hoth-x", "us-east-1", list);
    // Assess: the graphs reference exactly the alarms' metrics and the rules' TriggeredRules
    const graphs = widgets.filter((w) => w.type === "metric");
    assert.equal(graphs.length, list.length);
    assert.deepEqual(
      graphs.map((w) => (w.properties.metrics as unknown[][])[0]),
      [
        [
          "AWS/ApiGateway",
          "5XXError",
          "ApiName",
          "hoth-x-api",
          "Stage",
          "x",
          { stat: "Average", period: 300 },
        ],
        [
          "AWS/ApiGateway",
          "Latency",
          "ApiName",
          "hoth-x-api",
          "Stage",
          "x",
          { stat: "p99", period: 300 },
        ],
        ["AWS/Lambda", "Errors", "FunctionName", "hoth-x-app", { stat: "Sum", period: 300 }],
        ["AWS/Lambda", "Throttles", "FunctionName", "hoth-x-app", { stat: "Sum", period: 300 }],
        ["AWS/Lambda", "Duration", "FunctionName", "hoth-x-app", { stat: "Maximum", period: 300 }],
        [
          "AWS/States",
          "ExecutionsFailed",
          "StateMachineArn",
          SOURCES.stateMachines[0].arn,
          { stat: "Sum", period: 300 },
        ],
        [
          "AWS/States",
          "ExecutionsTimedOut",
          "StateMachineArn",
          SOURCES.stateMachines[0].arn,
          { stat: "Sum", period: 300 },
        ],
        [
          "AWS/States",
          "ExecutionThrottled",
          "StateMachineArn",
          SOURCES.stateMachines[0].arn,
          { stat: "Sum", period: 300 },
        ],
        [
          "AWS/SQS",
          "ApproximateNumberOfMessagesVisible",
          "QueueName",
          "hoth-x-bulk-dlq",
          { stat: "Maximum", period: 300 },
        ],
        [
          "AWS/Events",
          "TriggeredRules",
          "RuleName",
          "hoth-x-glue-job-failures",
          { stat: "Sum", period: 300 },
        ],
        [
          "AWS/Events",
          "TriggeredRules",
          "RuleName",
          "hoth-x-secret-read-failures",
          { stat: "Sum", period: 300 },
        ],
      ],
    );
    assert.deepEqual(graphs[4].properties.annotations, {
      horizontal: [{ label: "alarm hoth-x-app-duration", value: 8000 }],
    });
    // Headers per group, graphs three to a row, nothing overlapping
    assert.deepEqual(
      widgets.filter((w) => w.type === "text").map((w) => w.properties.markdown),
      [
        "## API",
        "## Lambda app",
        "## Step Functions flow",
        "## Dead-letter queues",
        "## Glue",
        "## Secrets Manager",
      ],
    );
    const cells = new Set<string>();
    for (const w of widgets) {
      for (let dx = 0; dx < w.width; dx++) {
        for (let dy = 0; dy < w.height; dy++) {
          const cell = `${w.x + dx},${w.y + dy}`;
          assert.ok(!cells.has(cell), `widgets overlap at ${cell}`);
          cells.add(cell);
        }
      }
      assert.ok(w.x + w.width <= 24, "a dashboard is 24 columns wide");
    }
  });

  it("keeps one graph per signal, without overlap, and the duration alarm at its share of each timeout, for any set of sources", () => {
    const id = fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/);
    const sources = fc.record({
      functions: fc.uniqueArray(
        fc.record({ id, timeoutSeconds: fc.integer({ min: 1, max: 900 }) }),
        { selector: (f) => f.id, maxLength: 8 },
      ),
      machines: fc.uniqueArray(id, { maxLength: 3 }),
      queues: fc.uniqueArray(id, { maxLength: 3 }),
      jobs: fc.array(id, { maxLength: 3 }),
      percent: fc.integer({ min: 10, max: 100 }),
      api: fc.boolean(),
    });
    fc.assert(
      fc.property(sources, (s) => {
        // Prepare: ids that cannot collide across kinds
        const list = signals({
          ...SOURCES,
          api: s.api ? SOURCES.api : undefined,
          functions: s.functions.map((f) => ({ ...f, id: `fn-${f.id}`, name: f.id })),
          stateMachines: s.machines.map((m) => ({ id: `sm-${m}`, arn: m })),
          deadLetterQueues: s.queues.map((q) => ({ id: `q-${q}`, name: q })),
          glueJobs: s.jobs,
          thresholds: { ...THRESHOLDS, lambdaDurationPercentOfTimeout: s.percent },
        });
        // Act
        const { widgets } = dashboardBody("p", "us-east-1", list);
        // Assess
        const graphs = widgets.filter((w) => w.type === "metric");
        assert.deepEqual(
          graphs.map((w) => w.properties.title),
          list.map((x) => x.title),
        );
        const cells = new Set<string>();
        for (const w of widgets) {
          for (let dx = 0; dx < w.width; dx++) {
            for (let dy = 0; dy < w.height; dy++) {
              const cell = `${w.x + dx},${w.y + dy}`;
              assert.ok(!cells.has(cell));
              cells.add(cell);
            }
          }
        }
        for (const f of s.functions) {
          const duration = list.find((x) => x.id === `fn-${f.id}-duration`);
          assert.ok(duration?.kind === "metric");
          assert.equal(duration.threshold, f.timeoutSeconds * 10 * s.percent);
        }
      }),
      { numRuns: 200, seed: 17 },
    );
  });
});
