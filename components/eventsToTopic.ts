import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { policy } from "../contracts/iam";

export interface EventsToTopicArgs {
  /** Logical names of the target and of the topic policy. */
  targetName: string;
  policyName: string;
  /** Sid of the topic policy statement. */
  sid: string;
  rule: aws.cloudwatch.EventRule;
  topic: aws.sns.Topic;
  /** The rule's bus, when it is not the default one. */
  eventBusName?: pulumi.Input<string>;
}

/**
 * Sends what an EventBridge rule matches to an SNS topic, and lets
 * EventBridge publish to that topic for this rule only (aws:SourceArn).
 */
export function eventsToTopic(a: EventsToTopicArgs, opts: pulumi.CustomResourceOptions) {
  new aws.cloudwatch.EventTarget(
    a.targetName,
    {
      rule: a.rule.name,
      arn: a.topic.arn,
      ...(a.eventBusName ? { eventBusName: a.eventBusName } : {}),
    },
    opts,
  );
  new aws.sns.TopicPolicy(
    a.policyName,
    {
      arn: a.topic.arn,
      policy: pulumi.all([a.topic.arn, a.rule.arn]).apply(([topicArn, ruleArn]) =>
        JSON.stringify(
          policy({
            Sid: a.sid,
            Effect: "Allow",
            Principal: { Service: "events.amazonaws.com" },
            Action: "sns:Publish",
            Resource: topicArn,
            Condition: { ArnEquals: { "aws:SourceArn": ruleArn } },
          }),
        ),
      ),
    },
    opts,
  );
}
