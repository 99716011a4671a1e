import {
  CreateTableCommand,
  DynamoDBClient,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import { REGISTRY_KEYS, registryTableName } from "../contracts/registryTable";

/**
 * The member registry table in the AWS emulator, with MemberRegistry's key
 * schema and TTL attribute (components/memberRegistry.ts). Returns its name;
 * an existing table is kept. `name` overrides the stack's name (tests).
 */
export async function createRegistryTable(
  prefix: string,
  name = registryTableName(prefix),
  db = new DynamoDBClient({}),
) {
  try {
    await db.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: "PAY_PER_REQUEST",
        KeySchema: [
          { AttributeName: REGISTRY_KEYS.hashKey, KeyType: "HASH" },
          { AttributeName: REGISTRY_KEYS.rangeKey, KeyType: "RANGE" },
        ],
        AttributeDefinitions: [
          { AttributeName: REGISTRY_KEYS.hashKey, AttributeType: "S" },
          { AttributeName: REGISTRY_KEYS.rangeKey, AttributeType: "S" },
        ],
      }),
    );
    await waitUntilTableExists({ client: db, maxWaitTime: 30 }, { TableName: name });
    await db.send(
      new UpdateTimeToLiveCommand({
        TableName: name,
        TimeToLiveSpecification: { AttributeName: REGISTRY_KEYS.ttlAttribute, Enabled: true },
      }),
    );
  } catch (error) {
    if ((error as Error).name !== "ResourceInUseException") throw error;
  }
  return name;
}
