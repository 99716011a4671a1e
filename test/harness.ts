import { generateKeyPairSync } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { stackConfigFile } from "../local/stackConfig";

/**
 * Pulumi runtime mocks shared by every program and component test. Mocks are
 * installed once (test/setup.ts); each test run resets the record with
 * `useStack(stack)` and then constructs what it tests.
 */

export const ACCOUNT_ID = "123456789012";
export const DEPLOYER_ROLE_ARN = `arn:aws:iam::${ACCOUNT_ID}:role/hoth-deployer`;
export const REGION = "us-east-1";
/** What the mocked kms.getPublicKey answers: a P-384 public key, base64 DER (SubjectPublicKeyInfo). */
export const SIGNING_PUBLIC_KEY = generateKeyPairSync("ec", { namedCurve: "P-384" })
  .publicKey.export({ format: "der", type: "spki" })
  .toString("base64");

export interface Recorded {
  type: string;
  name: string;
  id: string;
  urn: string;
  inputs: Record<string, unknown>;
  state: Record<string, unknown>;
  provider?: string;
}

export const recorded: Recorded[] = [];

/** A fake but well-formed ARN for the outputs other resources consume. */
function arnFor(type: string, name: string, inputs: Record<string, unknown>): string {
  const n = (inputs.name as string) ?? name;
  const base = `${REGION}:${ACCOUNT_ID}`;
  switch (type) {
    case "aws:s3/bucket:Bucket":
      return `arn:aws:s3:::${(inputs.bucket as string) ?? name}`;
    case "aws:iam/role:Role":
      return `arn:aws:iam::${ACCOUNT_ID}:role/${n}`;
    case "aws:kms/key:Key":
      return `arn:aws:kms:${base}:key/${name}-key-id`;
    case "aws:secretsmanager/secret:Secret":
      return `arn:aws:secretsmanager:${base}:secret:${n}-AbCdEf`;
    case "aws:lambda/function:Function":
      return `arn:aws:lambda:${base}:function:${n}`;
    case "aws:sfn/stateMachine:StateMachine":
      return `arn:aws:states:${base}:stateMachine:${n}`;
    case "aws:glue/job:Job":
      return `arn:aws:glue:${base}:job/${n}`;
    case "aws:cloudwatch/eventBus:EventBus":
      return `arn:aws:events:${base}:event-bus/${n}`;
    case "aws:cloudwatch/eventRule:EventRule":
      return `arn:aws:events:${base}:rule/${n}`;
    case "aws:cloudwatch/logGroup:LogGroup":
      return `arn:aws:logs:${base}:log-group:${n}`;
    case "aws:cloudtrail/trail:Trail":
      return `arn:aws:cloudtrail:${base}:trail/${n}`;
    case "aws:cloudwatch/metricAlarm:MetricAlarm":
      return `arn:aws:cloudwatch:${base}:alarm:${n}`;
    case "aws:dynamodb/table:Table":
      return `arn:aws:dynamodb:${base}:table/${n}`;
    default: {
      const [, mod] = type.split(":");
      return `arn:aws:${mod.split("/")[0]}:${base}:${name}`;
    }
  }
}

function extraState(type: string, name: string, inputs: Record<string, unknown>) {
  switch (type) {
    case "aws:kms/key:Key":
      return { keyId: `${name}-key-id` };
    case "aws:apigateway/restApi:RestApi":
      return {
        rootResourceId: `${name}-root`,
        executionArn: `arn:aws:execute-api:${REGION}:${ACCOUNT_ID}:${name}-id`,
      };
    case "aws:lambda/function:Function":
      return {
        invokeArn: `arn:aws:apigateway:${REGION}:lambda:path/2015-03-31/functions/${arnFor(type, name, inputs)}/invocations`,
      };
    case "random:index/randomPassword:RandomPassword":
      return { result: "mock-generated-password" };
    case "random:index/randomBytes:RandomBytes":
      return { base64: "bW9jay1nZW5lcmF0ZWQta2V5LW1vY2stZ2VuZXJhdGVkLWs=", hex: "00" };
    default:
      return {};
  }
}

const mocks: pulumi.runtime.Mocks = {
  newResource(args) {
    const inputs = args.inputs as Record<string, unknown>;
    const id = (inputs.name as string) ?? (inputs.bucket as string) ?? `${args.name}-id`;
    const state = {
      ...inputs,
      arn: arnFor(args.type, args.name, inputs),
      ...extraState(args.type, args.name, inputs),
    };
    recorded.push({
      type: args.type,
      name: args.name,
      id,
      urn: `urn:pulumi:${pulumi.getStack()}::hoth::${args.type}::${args.name}`,
      inputs,
      state,
      provider: args.provider,
    });
    return { id, state };
  },
  call(args) {
    switch (args.token) {
      case "aws:index/getCallerIdentity:getCallerIdentity":
        return {
          accountId: ACCOUNT_ID,
          arn: `arn:aws:sts::${ACCOUNT_ID}:assumed-role/hoth-deployer/session`,
          userId: "AROAEXAMPLE:session",
        };
      case "aws:iam/getSessionContext:getSessionContext":
        return { arn: args.inputs.arn, issuerArn: DEPLOYER_ROLE_ARN, issuerName: "hoth-deployer" };
      case "aws:index/getRegion:getRegion":
        return { name: REGION, region: REGION };
      case "aws:kms/getPublicKey:getPublicKey":
        return {
          id: args.inputs.keyId,
          keyId: args.inputs.keyId,
          publicKey: SIGNING_PUBLIC_KEY,
          customerMasterKeySpec: "ECC_NIST_P384",
          keyUsage: "SIGN_VERIFY",
        };
      case "aws:index/getPartition:getPartition":
        return { partition: "aws", dnsSuffix: "amazonaws.com" };
      default:
        throw new Error(`unmocked call ${args.token}`);
    }
  },
};

/** The stack's config file, flattened the way Pulumi hands config to a program. */
export const stackConfig = stackConfigFile;

/** Starts a fresh mocked deployment of `stack`: clears the record, sets mocks and config. */
export function useStack(stack: string, overrides: Record<string, string> = {}): void {
  recorded.length = 0;
  pulumi.runtime.setMocks(mocks, "hoth", stack, false);
  pulumi.runtime.setAllConfig({ ...stackConfig(stack), ...overrides });
}

/** Resolves an Output in a test (mocks make every output known). */
export function unwrap<T>(output: pulumi.Output<T> | pulumi.Input<T>): Promise<T> {
  return new Promise((resolve) => pulumi.output(output).apply((v) => resolve(v as T)));
}

/** Waits until every resource registration started so far has been recorded. */
export async function settle(): Promise<void> {
  let before = -1;
  while (before !== recorded.length) {
    before = recorded.length;
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const ofType = (type: string): Recorded[] => recorded.filter((r) => r.type === type);

/** The one recorded resource of `type` named `name`; fails loudly otherwise. */
export function find(type: string, name: string): Recorded {
  const hits = recorded.filter((r) => r.type === type && r.name === name);
  if (hits.length !== 1) {
    const names = ofType(type).map((r) => r.name);
    throw new Error(
      `expected one ${type} named ${name}, found ${hits.length} (have: ${names.join(", ")})`,
    );
  }
  return hits[0];
}

/** An input as a plain value: mocks see `pulumi.secret` inputs wrapped with a signature key. */
export function plain(value: unknown): unknown {
  const sig = "4dabf18193072939515e22adb298388d";
  return value && typeof value === "object" && sig in value
    ? (value as unknown as { value: unknown }).value
    : value;
}

/** A JSON policy input, parsed. */
export const doc = (r: Recorded, key = "policy") => JSON.parse(r.inputs[key] as string);

interface ResourceInternals {
  __name?: string;
  __protect?: boolean;
  __childResources?: Set<pulumi.Resource>;
}

/** Names of every descendant of a component whose `protect` option is on. */
export function protectedDescendants(root: pulumi.Resource): string[] {
  const out: string[] = [];
  const walk = (r: pulumi.Resource) => {
    for (const c of (r as unknown as ResourceInternals).__childResources ?? []) {
      const ci = c as unknown as ResourceInternals;
      if (ci.__protect && pulumi.CustomResource.isInstance(c)) out.push(ci.__name ?? "?");
      walk(c);
    }
  };
  walk(root);
  return out.sort();
}
