/**
 * The operational signals of a stack, as data: one list from which the
 * Monitoring component creates every CloudWatch alarm, every EventBridge
 * alert rule and every dashboard widget. Adding a signal here adds its alarm
 * (or rule) and its widget; nothing else lists them. Pure: the values are
 * generic (`T` is `string` in tests, `pulumi.Input<string>` in the component).
 */

/** The alarm thresholds of a stack (`hoth:alarms`, contracts/config.ts). */
export interface AlarmThresholds {
  api5xxRatePercent: number;
  apiLatencyP99Ms: number;
  lambdaErrors: number;
  lambdaThrottles: number;
  lambdaDurationPercentOfTimeout: number;
  periodSeconds: number;
  evaluationPeriods: number;
}

export interface SignalSources<T> {
  prefix: string;
  /** The REST API and its stage (dimensions ApiName, Stage). */
  api?: { name: T; stage: T };
  /** Every Lambda function of the stack, with its timeout. */
  functions: { id: string; name: T; timeoutSeconds: number }[];
  /** Every state machine of the stack. */
  stateMachines: { id: string; arn: T }[];
  /** Every dead-letter queue of the stack (by queue name). */
  deadLetterQueues: { id: string; name: T }[];
  /** Names of the Glue jobs whose failed or timed-out runs alert. */
  glueJobs: T[];
  /**
   * The stack's secrets, by name prefix (`hoth-dev/`) and ARN prefix
   * (`arn:aws:secretsmanager:<region>:<account>:secret:hoth-dev/`): failed
   * reads of them alert. @default no secret signal
   */
  secrets?: { namePrefix: string; arnPrefix: T };
  thresholds: AlarmThresholds;
}

/**
 * How an alarm treats periods without data
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data).
 */
export type MissingData = "notBreaching" | "breaching" | "ignore" | "missing";

export interface MetricSignal<T> {
  kind: "metric";
  /** Unique in the stack; the alarm is named `${prefix}-${id}`. */
  id: string;
  /** Dashboard row. */
  group: string;
  title: string;
  namespace: string;
  metricName: string;
  dimensions: Record<string, T>;
  /** `Sum`, `Average`, `Maximum` or a percentile (`p99`). */
  statistic: "Sum" | "Average" | "Maximum" | "p99";
  periodSeconds: number;
  evaluationPeriods: number;
  comparison: "GreaterThanOrEqualToThreshold" | "GreaterThanThreshold";
  threshold: number;
  treatMissingData: MissingData;
  /** Why missing data is treated so (alarm description, README). */
  missingDataReason: string;
}

/**
 * An alert delivered by an EventBridge rule on the default bus to the alerts
 * topic; its dashboard widget shows the rule's TriggeredRules metric.
 */
export interface EventSignal {
  kind: "event";
  id: string;
  group: string;
  title: string;
  /** The rule is named `${prefix}-${id}`. */
  eventPattern: Record<string, unknown> & { detail?: Record<string, unknown> };
  /**
   * EventBridge delivers CloudTrail's read-only management events (GetSecretValue)
   * only to rules in this state:
   * https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html
   */
  ruleState: "ENABLED" | "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS";
  /** What sets it off (README alarm table). */
  condition: string;
}

export type Signal<T> = MetricSignal<T> | EventSignal;

const NO_TRAFFIC = "no requests in the period is not an error";
const NO_INVOCATIONS = "a function that was not invoked has not failed";
const NO_EXECUTIONS = "no executions in the period means none failed";

/** Every signal of a stack, in dashboard order. */
export function signals<T>(s: SignalSources<T>): Signal<T>[] {
  const t = s.thresholds;
  const common = {
    kind: "metric" as const,
    periodSeconds: t.periodSeconds,
    evaluationPeriods: t.evaluationPeriods,
  };
  const out: Signal<T>[] = [];
  if (s.api) {
    const dimensions = { ApiName: s.api.name, Stage: s.api.stage };
    out.push(
      {
        ...common,
        id: "api-5xx-rate",
        group: "API",
        title: "API 5XX error rate",
        namespace: "AWS/ApiGateway",
        metricName: "5XXError",
        dimensions,
        // 5XXError is 0 or 1 per request: its Average is the error rate.
        statistic: "Average",
        comparison: "GreaterThanThreshold",
        threshold: t.api5xxRatePercent / 100,
        treatMissingData: "notBreaching",
        missingDataReason: NO_TRAFFIC,
      },
      {
        ...common,
        id: "api-latency-p99",
        group: "API",
        title: "API latency p99 (ms)",
        namespace: "AWS/ApiGateway",
        metricName: "Latency",
        dimensions,
        statistic: "p99",
        comparison: "GreaterThanThreshold",
        threshold: t.apiLatencyP99Ms,
        treatMissingData: "notBreaching",
        missingDataReason: NO_TRAFFIC,
      },
    );
  }
  for (const fn of s.functions) {
    const dimensions = { FunctionName: fn.name };
    const group = `Lambda ${fn.id}`;
    out.push(
      {
        ...common,
        id: `${fn.id}-errors`,
        group,
        title: `${fn.id}: errors`,
        namespace: "AWS/Lambda",
        metricName: "Errors",
        dimensions,
        statistic: "Sum",
        comparison: "GreaterThanOrEqualToThreshold",
        threshold: t.lambdaErrors,
        treatMissingData: "notBreaching",
        missingDataReason: NO_INVOCATIONS,
      },
      {
        ...common,
        id: `${fn.id}-throttles`,
        group,
        title: `${fn.id}: throttles`,
        namespace: "AWS/Lambda",
        metricName: "Throttles",
        dimensions,
        statistic: "Sum",
        comparison: "GreaterThanOrEqualToThreshold",
        threshold: t.lambdaThrottles,
        treatMissingData: "notBreaching",
        missingDataReason: NO_INVOCATIONS,
      },
      {
        ...common,
        id: `${fn.id}-duration`,
        group,
        title: `${fn.id}: max duration (ms) vs ${t.lambdaDurationPercentOfTimeout}% of timeout`,
        namespace: "AWS/Lambda",
        metricName: "Duration",
        dimensions,
        statistic: "Maximum",
        comparison: "GreaterThanThreshold",
        threshold: (fn.timeoutSeconds * 1000 * t.lambdaDurationPercentOfTimeout) / 100,
        treatMissingData: "notBreaching",
        missingDataReason: NO_INVOCATIONS,
      },
    );
  }
  for (const sm of s.stateMachines) {
    const metric = (id: string, metricName: string, title: string): MetricSignal<T> => ({
      ...common,
      // One failed migration is one too many: every execution is a member load.
      evaluationPeriods: 1,
      id: `${sm.id}-${id}`,
      group: `Step Functions ${sm.id}`,
      title: `${sm.id}: ${title}`,
      namespace: "AWS/States",
      metricName,
      dimensions: { StateMachineArn: sm.arn },
      statistic: "Sum",
      comparison: "GreaterThanOrEqualToThreshold",
      threshold: 1,
      treatMissingData: "notBreaching",
      missingDataReason: NO_EXECUTIONS,
    });
    out.push(
      metric("failed", "ExecutionsFailed", "executions failed"),
      metric("timed-out", "ExecutionsTimedOut", "executions timed out"),
      metric("throttled", "ExecutionThrottled", "executions throttled"),
    );
  }
  for (const q of s.deadLetterQueues) {
    out.push({
      ...common,
      evaluationPeriods: 1,
      id: `${q.id}-dlq-visible`,
      group: "Dead-letter queues",
      title: `${q.id}: messages in the dead-letter queue`,
      namespace: "AWS/SQS",
      metricName: "ApproximateNumberOfMessagesVisible",
      dimensions: { QueueName: q.name },
      statistic: "Maximum",
      comparison: "GreaterThanOrEqualToThreshold",
      threshold: 1,
      treatMissingData: "notBreaching",
      // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
      missingDataReason:
        "SQS stops reporting a queue only after six hours without messages or calls: an empty queue",
    });
  }
  if (s.glueJobs.length) {
    out.push({
      kind: "event",
      id: "glue-job-failures",
      group: "Glue",
      title: "Glue job runs failed or timed out",
      // https://docs.aws.amazon.com/glue/latest/dg/automating-awsglue-with-cloudwatch-events.html
      eventPattern: {
        source: ["aws.glue"],
        "detail-type": ["Glue Job State Change"],
        detail: { jobName: s.glueJobs, state: ["FAILED", "TIMEOUT"] },
      },
      ruleState: "ENABLED",
      condition: "a run of one of the stack's Glue jobs ends FAILED or TIMEOUT",
    });
  }
  if (s.secrets) {
    const { namePrefix, arnPrefix } = s.secrets;
    out.push({
      kind: "event",
      id: "secret-read-failures",
      group: "Secrets Manager",
      title: "Failed reads of the stack's secrets",
      eventPattern: {
        source: ["aws.secretsmanager"],
        "detail-type": ["AWS API Call via CloudTrail"],
        detail: {
          eventSource: ["secretsmanager.amazonaws.com"],
          eventName: ["GetSecretValue"],
          errorCode: [{ exists: true }],
          // Callers name a secret by name or by ARN.
          requestParameters: {
            secretId: [{ prefix: namePrefix }, { prefix: arnPrefix }],
          },
        },
      },
      ruleState: "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS",
      condition: `GetSecretValue of a secret named ${namePrefix}* (by name or ARN) returns an error`,
    });
  }
  const ids = out.map((x) => x.id);
  const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (twice.length) {
    throw new Error(`Signal ids must be unique; repeated: ${[...new Set(twice)].join(", ")}`);
  }
  return out;
}

/** The arguments of the `aws.cloudwatch.MetricAlarm` of a metric signal. */
export function alarmArgs<T>(prefix: string, s: MetricSignal<T>, topicArn: T) {
  const percentile = s.statistic.startsWith("p");
  return {
    name: `${prefix}-${s.id}`,
    alarmDescription: `${s.title}: ${s.comparison === "GreaterThanThreshold" ? ">" : ">="} ${s.threshold} for ${s.evaluationPeriods} x ${s.periodSeconds}s. Missing data: ${s.treatMissingData} (${s.missingDataReason}).`,
    namespace: s.namespace,
    metricName: s.metricName,
    dimensions: s.dimensions,
    ...(percentile ? { extendedStatistic: s.statistic } : { statistic: s.statistic }),
    period: s.periodSeconds,
    evaluationPeriods: s.evaluationPeriods,
    datapointsToAlarm: s.evaluationPeriods,
    comparisonOperator: s.comparison,
    threshold: s.threshold,
    treatMissingData: s.treatMissingData,
    alarmActions: [topicArn],
    okActions: [topicArn],
  };
}

/** The EventBridge TriggeredRules metric of an event signal's rule. */
export const ruleMetric = (prefix: string, s: EventSignal) => ({
  namespace: "AWS/Events",
  metricName: "TriggeredRules",
  dimensions: { RuleName: `${prefix}-${s.id}` },
  statistic: "Sum" as const,
});

/** One metric of a dashboard widget: [namespace, name, dimension name, value, ..., options]. */
export type WidgetMetric = (string | Record<string, unknown>)[];

export interface Widget {
  type: "metric" | "text";
  x: number;
  y: number;
  width: number;
  height: number;
  properties: Record<string, unknown>;
}

const WIDTH = 8;
const HEIGHT = 6;

/**
 * The dashboard body
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html):
 * a text header per group, then one graph per signal, three to a row, each
 * showing its metric with the alarm threshold as an annotation.
 */
export function dashboardBody(
  prefix: string,
  region: string,
  list: Signal<string>[],
): { widgets: Widget[] } {
  const widgets: Widget[] = [];
  let y = 0;
  const groups = [...new Set(list.map((s) => s.group))];
  for (const group of groups) {
    widgets.push({
      type: "text",
      x: 0,
      y,
      width: 24,
      height: 1,
      properties: { markdown: `## ${group}` },
    });
    y += 1;
    list
      .filter((s) => s.group === group)
      .forEach((s, i) => {
        const m =
          s.kind === "metric"
            ? s
            : { ...ruleMetric(prefix, s), periodSeconds: 300, threshold: undefined };
        const metric: WidgetMetric = [
          m.namespace,
          m.metricName,
          ...Object.entries(m.dimensions).flat(),
          { stat: m.statistic, period: m.periodSeconds },
        ];
        widgets.push({
          type: "metric",
          x: (i % 3) * WIDTH,
          y: y + Math.floor(i / 3) * HEIGHT,
          width: WIDTH,
          height: HEIGHT,
          properties: {
            title: s.title,
            region,
            view: "timeSeries",
            stacked: false,
            metrics: [metric],
            ...(s.kind === "metric"
              ? {
                  annotations: {
                    horizontal: [{ label: `alarm ${prefix}-${s.id}`, value: s.threshold }],
                  },
                }
              : {}),
          },
        });
      });
    y += Math.ceil(list.filter((s) => s.group === group).length / 3) * HEIGHT;
  }
  return { widgets };
}
