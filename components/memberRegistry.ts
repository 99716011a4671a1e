import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { policy } from "../contracts/iam";
import { REGISTRY_KEYS, registryTableName } from "../contracts/registryTable";
import { handlerFunction } from "./handlerFunction";
import { registryExportStatements } from "./registryPolicies";

export interface MemberRegistryArgs {
  prefix: string;
  region: string;
  accountId: pulumi.Input<string>;
  /** The stack's customer-managed key: the table's SSE and the export's logs. */
  keyArn: pulumi.Input<string>;
  /** The lake the export writes snapshots to. */
  lakeBucket: pulumi.Input<string>;
  lakeBucketArn: pulumi.Input<string>;
  /** DynamoDB deletion protection (on in prod). */
  deletionProtection: boolean;
  logRetentionDays: number;
  logLevel: string;
  /** The export function's timeout (s); a snapshot of a large registry takes a while. @default 300 */
  exportTimeoutSeconds?: number;
  /** @default 512 */
  exportMemorySizeMb?: number;
}

/**
 * The member registry: one DynamoDB table (on-demand, SSE with the stack's
 * key, point-in-time recovery, deletion protection per stack, TTL on
 * idempotency records) and the function that snapshots one organisation's
 * committed members into the landing zone for `ingest_fhir`
 * (handlers/registryExport.ts), run by the migration state machine.
 */
export class MemberRegistry extends pulumi.ComponentResource {
  readonly tableName: pulumi.Output<string>;
  readonly tableArn: pulumi.Output<string>;
  readonly exportFunctionArn: pulumi.Output<string>;
  readonly exportFunctionName: pulumi.Output<string>;

  constructor(name: string, args: MemberRegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hoth:data:MemberRegistry", name, {}, opts);
    const exportTimeoutSeconds = args.exportTimeoutSeconds ?? 300;
    const exportMemorySizeMb = args.exportMemorySizeMb ?? 512;
    const child = { parent: this };

    const table = new aws.dynamodb.Table(
      `${name}-registry`,
      {
        name: registryTableName(args.prefix),
        billingMode: "PAY_PER_REQUEST",
        hashKey: REGISTRY_KEYS.hashKey,
        rangeKey: REGISTRY_KEYS.rangeKey,
        attributes: [
          { name: REGISTRY_KEYS.hashKey, type: "S" },
          { name: REGISTRY_KEYS.rangeKey, type: "S" },
        ],
        serverSideEncryption: { enabled: true, kmsKeyArn: args.keyArn },
        pointInTimeRecovery: { enabled: true },
        deletionProtectionEnabled: args.deletionProtection,
        ttl: { attributeName: REGISTRY_KEYS.ttlAttribute, enabled: true },
      },
      child,
    );

    const exporter = handlerFunction(
      `${name}-registry-export`,
      {
        handler: "registryExport",
        functionName: `${args.prefix}-registry-export`,
        accountId: args.accountId,
        keyArn: args.keyArn,
        logRetentionDays: args.logRetentionDays,
        memorySizeMb: exportMemorySizeMb,
        timeoutSeconds: exportTimeoutSeconds,
        // One export per migration run; a few at once at most.
        reservedConcurrency: 5,
        environment: {
          REGISTRY_TABLE: table.name,
          LAKE_BUCKET: args.lakeBucket,
          LOG_LEVEL: args.logLevel,
        },
      },
      child,
    );
    new aws.iam.RolePolicy(
      `${name}-registry-export-reads`,
      {
        role: exporter.role.name,
        policy: pulumi
          .all([table.arn, args.keyArn, args.lakeBucketArn])
          .apply(([tableArn, keyArn, lakeBucketArn]) =>
            JSON.stringify(
              policy(
                ...registryExportStatements({
                  tableArn,
                  keyArn,
                  lakeBucketArn,
                  region: args.region,
                }),
              ),
            ),
          ),
      },
      child,
    );

    this.tableName = table.name;
    this.tableArn = table.arn;
    this.exportFunctionArn = exporter.fn.arn;
    this.exportFunctionName = exporter.fn.name;
    this.registerOutputs({
      tableName: this.tableName,
      tableArn: this.tableArn,
      exportFunctionArn: this.exportFunctionArn,
    });
  }
}
