import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AlertsTopic } from "./alertsTopic";
import {
  type AlarmThresholds,
  alarmArgs,
  dashboardBody,
  type Signal,
  type SignalSources,
  signals,
} from "./signals";

type Sources = SignalSources<pulumi.Input<string>>;

export interface MonitoringArgs {
  prefix: string;
  region: string;
  /** Where every alarm and alert rule publishes. */
  alerts: AlertsTopic;
  /** The REST API's name and stage. @default no API signals */
  api?: Sources["api"];
  /** Every Lambda function of the stack: each gets errors, throttles and duration alarms. */
  functions: Sources["functions"];
  /** Every state machine: failed, timed-out and throttled executions. */
  stateMachines: Sources["stateMachines"];
  /** Every dead-letter queue: messages visible. @default [] */
  deadLetterQueues?: Sources["deadLetterQueues"];
  /** Glue jobs whose FAILED/TIMEOUT runs alert. @default [] */
  glueJobs?: Sources["glueJobs"];
  /** The stack's secrets: failed reads alert. @default no secret signal */
  secrets?: Sources["secrets"];
  thresholds: AlarmThresholds;
}

/**
 * Alarms that page and one dashboard, both generated from `signals()`: a
 * CloudWatch alarm per metric signal and an EventBridge rule per event
 * signal, all publishing to the alerts topic, and a CloudWatch dashboard
 * with one widget per signal.
 */
export class Monitoring extends pulumi.ComponentResource {
  readonly dashboardName: pulumi.Output<string>;
  /** Alarm names, in signal order. */
  readonly alarmNames: pulumi.Output<string>[];

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hoth:ops:Monitoring", name, {}, opts);
    const child = { parent: this };
    const p = args.prefix;
    const list = signals<pulumi.Input<string>>({
      prefix: p,
      api: args.api,
      functions: args.functions,
      stateMachines: args.stateMachines,
      deadLetterQueues: args.deadLetterQueues ?? [],
      glueJobs: args.glueJobs ?? [],
      secrets: args.secrets,
      thresholds: args.thresholds,
    });

    const alarms: aws.cloudwatch.MetricAlarm[] = [];
    for (const s of list) {
      if (s.kind === "metric") {
        alarms.push(
          new aws.cloudwatch.MetricAlarm(
            `${name}-${s.id}`,
            alarmArgs<pulumi.Input<string>>(p, s, args.alerts.arn),
            child,
          ),
        );
      } else {
        const rule = new aws.cloudwatch.EventRule(
          `${name}-${s.id}`,
          {
            name: `${p}-${s.id}`,
            description: s.title,
            eventPattern: pulumi.output(s.eventPattern).apply((e) => JSON.stringify(e)),
            state: s.ruleState,
          },
          child,
        );
        args.alerts.routeRule(rule, `${name}-${s.id}-to-sns`, child);
      }
    }
    args.alerts.allowAlarms(alarms);

    const dashboard = new aws.cloudwatch.Dashboard(
      `${name}-dashboard`,
      {
        dashboardName: `${p}-operations`,
        dashboardBody: pulumi
          .output(list)
          .apply((resolved) =>
            JSON.stringify(dashboardBody(p, args.region, resolved as Signal<string>[])),
          ),
      },
      child,
    );

    this.dashboardName = dashboard.dashboardName;
    this.alarmNames = alarms.map((a) => a.name);
    this.registerOutputs({ dashboardName: this.dashboardName });
  }
}
