import type { Statement } from "../contracts/iam";

/**
 * Pure builders for the audit trail: its name and ARN, its event selectors
 * and the policies of its buckets and key, kept apart from the component so
 * the exact documents can be tested and reviewed as data.
 */

/** The trail's name. The key policy needs its ARN before the trail exists. */
export const trailName = (prefix: string) => `${prefix}-audit`;

export const trailArn = (prefix: string, region: string, accountId: string) =>
  `arn:aws:cloudtrail:${region}:${accountId}:trail/${trailName(prefix)}`;

/** Where the trail writes under its bucket: `${TRAIL_KEY_PREFIX}/AWSLogs/<account>/CloudTrail/...`. */
export const TRAIL_KEY_PREFIX = "cloudtrail";

export interface FieldSelector {
  field: string;
  equals?: string[];
  startsWith?: string[];
}

export interface EventSelector {
  name: string;
  fieldSelectors: FieldSelector[];
}

/**
 * Advanced event selectors: every management event, and data events for
 * exactly the lake bucket's objects and (when it exists) the member registry
 * table. Nothing else's data events: not the trail's own bucket, which would
 * log its own deliveries.
 * https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-data-events-with-cloudtrail.html
 */
export function eventSelectors(lakeBucketArn: string, registryTableArn?: string): EventSelector[] {
  return [
    {
      name: "Management events",
      fieldSelectors: [{ field: "eventCategory", equals: ["Management"] }],
    },
    {
      name: "Lake objects (landing, curated, quarantine, registry)",
      fieldSelectors: [
        { field: "eventCategory", equals: ["Data"] },
        { field: "resources.type", equals: ["AWS::S3::Object"] },
        { field: "resources.ARN", startsWith: [`${lakeBucketArn}/`] },
      ],
    },
    ...(registryTableArn
      ? [
          {
            name: "Member registry items",
            fieldSelectors: [
              { field: "eventCategory", equals: ["Data"] },
              { field: "resources.type", equals: ["AWS::DynamoDB::Table"] },
              { field: "resources.ARN", equals: [registryTableArn] },
            ],
          },
        ]
      : []),
  ];
}

/**
 * Statements the trail's bucket adds after the TLS-only deny: CloudTrail may
 * read the bucket ACL and write under its prefix, for this trail only
 * (aws:SourceArn), and nobody may delete a log file or a version of one
 * before the lifecycle rule expires it (lifecycle expiry is not subject to
 * the bucket policy).
 * https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html
 */
export function trailBucketStatements(
  bucketArn: string,
  accountId: string,
  sourceTrailArn: string,
): Statement[] {
  return [
    {
      Sid: "CloudTrailAclCheck",
      Effect: "Allow",
      Principal: { Service: "cloudtrail.amazonaws.com" },
      Action: "s3:GetBucketAcl",
      Resource: bucketArn,
      Condition: { StringEquals: { "aws:SourceArn": sourceTrailArn } },
    },
    {
      Sid: "CloudTrailWrite",
      Effect: "Allow",
      Principal: { Service: "cloudtrail.amazonaws.com" },
      Action: "s3:PutObject",
      Resource: `${bucketArn}/${TRAIL_KEY_PREFIX}/AWSLogs/${accountId}/*`,
      Condition: {
        StringEquals: {
          "s3:x-amz-acl": "bucket-owner-full-control",
          "aws:SourceArn": sourceTrailArn,
        },
      },
    },
    {
      Sid: "DenyLogDeletion",
      Effect: "Deny",
      Principal: "*",
      Action: ["s3:DeleteObject", "s3:DeleteObjectVersion"],
      Resource: `${bucketArn}/*`,
    },
  ];
}

/**
 * Statements the access-log bucket adds after the TLS-only deny: S3 server
 * access logging may write there, for the trail's bucket only.
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html#grant-log-delivery-permissions-general
 */
export function accessLogBucketStatements(
  bucketArn: string,
  accountId: string,
  sourceBucketArn: string,
): Statement[] {
  return [
    {
      Sid: "S3ServerAccessLogsWrite",
      Effect: "Allow",
      Principal: { Service: "logging.s3.amazonaws.com" },
      Action: "s3:PutObject",
      Resource: `${bucketArn}/*`,
      Condition: {
        ArnLike: { "aws:SourceArn": sourceBucketArn },
        StringEquals: { "aws:SourceAccount": accountId },
      },
    },
    {
      Sid: "DenyLogDeletion",
      Effect: "Deny",
      Principal: "*",
      Action: ["s3:DeleteObject", "s3:DeleteObjectVersion"],
      Resource: `${bucketArn}/*`,
    },
  ];
}

/**
 * Key policy statements that let CloudTrail encrypt this stack's trail's log
 * files with the stack key (and describe the key when the trail is created).
 * Readers decrypt through S3 (the key's `UseThroughNamedServices` statement).
 * https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html
 */
export function cloudTrailKeyStatements(accountId: string, trailArns: string[]): Statement[] {
  if (!trailArns.length) return [];
  return [
    {
      Sid: "CloudTrailEncryptLogs",
      Effect: "Allow",
      Principal: { Service: "cloudtrail.amazonaws.com" },
      Action: "kms:GenerateDataKey*",
      Resource: "*",
      Condition: {
        StringEquals: { "aws:SourceArn": trailArns },
        StringLike: {
          "kms:EncryptionContext:aws:cloudtrail:arn": `arn:aws:cloudtrail:*:${accountId}:trail/*`,
        },
      },
    },
    {
      Sid: "CloudTrailDescribeKey",
      Effect: "Allow",
      Principal: { Service: "cloudtrail.amazonaws.com" },
      Action: "kms:DescribeKey",
      Resource: "*",
      Condition: { StringEquals: { "aws:SourceArn": trailArns } },
    },
  ];
}

/**
 * The CloudTrail record fields as Glue/Hive column types, for the Athena
 * table over the trail (Athena's CloudTrail table, lower-cased):
 * https://docs.aws.amazon.com/athena/latest/ug/create-cloudtrail-table-partition-projection.html
 */
export const CLOUDTRAIL_COLUMNS: [string, string][] = [
  ["eventversion", "string"],
  [
    "useridentity",
    "struct<type:string,principalid:string,arn:string,accountid:string,invokedby:string,accesskeyid:string,username:string,onbehalfof:struct<userid:string,identitystorearn:string>,sessioncontext:struct<attributes:struct<mfaauthenticated:string,creationdate:string>,sessionissuer:struct<type:string,principalid:string,arn:string,accountid:string,username:string>,ec2roledelivery:string,webidfederationdata:struct<federatedprovider:string,attributes:map<string,string>>>>",
  ],
  ["eventtime", "string"],
  ["eventsource", "string"],
  ["eventname", "string"],
  ["awsregion", "string"],
  ["sourceipaddress", "string"],
  ["useragent", "string"],
  ["errorcode", "string"],
  ["errormessage", "string"],
  ["requestparameters", "string"],
  ["responseelements", "string"],
  ["additionaleventdata", "string"],
  ["requestid", "string"],
  ["eventid", "string"],
  ["readonly", "string"],
  ["resources", "array<struct<arn:string,accountid:string,type:string>>"],
  ["eventtype", "string"],
  ["apiversion", "string"],
  ["recipientaccountid", "string"],
  ["serviceeventdetails", "string"],
  ["sharedeventid", "string"],
  ["vpcendpointid", "string"],
  ["vpcendpointaccountid", "string"],
  ["eventcategory", "string"],
  ["sessioncredentialfromconsole", "string"],
  ["edgedevicedetails", "string"],
  ["tlsdetails", "struct<tlsversion:string,ciphersuite:string,clientprovidedhostheader:string>"],
];

/** Where the trail's files of one account and region are: `.../CloudTrail/<region>/`. */
export const trailLogLocation = (bucket: string, accountId: string, region: string) =>
  `s3://${bucket}/${TRAIL_KEY_PREFIX}/AWSLogs/${accountId}/CloudTrail/${region}/`;

/**
 * Table parameters: partition projection on the day (`yyyy/MM/dd` under the
 * region), so a new day needs no MSCK REPAIR, over exactly the retention
 * window. https://docs.aws.amazon.com/athena/latest/ug/partition-projection-supported-types.html
 */
export function cloudTrailTableParameters(location: string, retentionDays: number) {
  return {
    EXTERNAL: "TRUE",
    classification: "cloudtrail",
    "projection.enabled": "true",
    "projection.timestamp.type": "date",
    "projection.timestamp.format": "yyyy/MM/dd",
    "projection.timestamp.range": `NOW-${retentionDays}DAYS,NOW`,
    "projection.timestamp.interval": "1",
    "projection.timestamp.interval.unit": "DAYS",
    "storage.location.template": `${location}\${timestamp}`,
  };
}
