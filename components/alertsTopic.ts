import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { denyInsecureTransport, policy, type Statement } from "../contracts/iam";

export interface AlertsTopicArgs {
  prefix: string;
  accountId: pulumi.Input<string>;
  /** KMS key of the topic. Its policy must let events and cloudwatch use it. */
  keyArn: pulumi.Input<string>;
}

/**
 * Who may publish to the alerts topic: exactly the named EventBridge rules
 * and CloudWatch alarms (aws:SourceArn), and nobody without TLS. A topic has
 * one policy, so every publisher is listed here.
 * https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html
 */
export function alertsTopicStatements(
  topicArn: string,
  accountId: string,
  ruleArns: string[],
  alarmArns: string[],
): Statement[] {
  const from = (sid: string, service: string, arns: string[]): Statement[] =>
    arns.length
      ? [
          {
            Sid: sid,
            Effect: "Allow",
            Principal: { Service: service },
            Action: "sns:Publish",
            Resource: topicArn,
            Condition: {
              ArnEquals: { "aws:SourceArn": arns.length === 1 ? arns[0] : arns },
              StringEquals: { "aws:SourceAccount": accountId },
            },
          },
        ]
      : [];
  return [
    denyInsecureTransport("sns", [topicArn]),
    ...from("PublishFromEventRules", "events.amazonaws.com", ruleArns),
    ...from("PublishFromAlarms", "cloudwatch.amazonaws.com", alarmArns),
  ];
}

/**
 * The stack's one alerts topic (KMS-encrypted SNS): migration failures, Glue
 * job failures, failed secret reads and every CloudWatch alarm publish here;
 * operators subscribe their pager to it. Publishers are added with
 * `routeRule` and `allowAlarms`; `seal()` then writes the topic policy.
 */
export class AlertsTopic extends pulumi.ComponentResource {
  readonly topic: aws.sns.Topic;
  readonly arn: pulumi.Output<string>;

  private readonly ruleArns: pulumi.Input<string>[] = [];
  private readonly alarmArns: pulumi.Input<string>[] = [];
  private sealed = false;

  constructor(
    private readonly name: string,
    private readonly args: AlertsTopicArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("hoth:ops:AlertsTopic", name, {}, opts);
    this.topic = new aws.sns.Topic(
      `${name}-alerts`,
      { name: `${args.prefix}-alerts`, kmsMasterKeyId: args.keyArn },
      { parent: this },
    );
    this.arn = this.topic.arn;
    this.registerOutputs({ arn: this.arn });
  }

  /** Sends what `rule` matches to the topic, and lets that rule (only) publish. */
  routeRule(
    rule: aws.cloudwatch.EventRule,
    targetName: string,
    opts: pulumi.CustomResourceOptions,
    eventBusName?: pulumi.Input<string>,
  ): aws.cloudwatch.EventTarget {
    this.assertOpen("routeRule");
    this.ruleArns.push(rule.arn);
    return new aws.cloudwatch.EventTarget(
      targetName,
      { rule: rule.name, arn: this.arn, ...(eventBusName ? { eventBusName } : {}) },
      opts,
    );
  }

  /** Lets these alarms publish to the topic. */
  allowAlarms(alarms: aws.cloudwatch.MetricAlarm[]): void {
    this.assertOpen("allowAlarms");
    this.alarmArns.push(...alarms.map((a) => a.arn));
  }

  /** Writes the topic policy; call once, after every publisher was added. */
  seal(): void {
    this.assertOpen("seal");
    this.sealed = true;
    new aws.sns.TopicPolicy(
      `${this.name}-alerts-policy`,
      {
        arn: this.arn,
        policy: pulumi
          .all([
            this.arn,
            this.args.accountId,
            pulumi.all(this.ruleArns),
            pulumi.all(this.alarmArns),
          ])
          .apply(([topicArn, accountId, rules, alarms]) =>
            JSON.stringify(policy(...alertsTopicStatements(topicArn, accountId, rules, alarms))),
          ),
      },
      { parent: this },
    );
  }

  private assertOpen(what: string): void {
    if (this.sealed) throw new Error(`${what}() after seal(): add every publisher before seal()`);
  }
}
