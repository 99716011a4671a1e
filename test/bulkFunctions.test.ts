import * as assert from "node:assert/strict";

import program = require("../index");

import { KEY_ADMIN_ACTIONS } from "../components/secretPolicies";
import { bulkDownloadMemoryMb } from "../contracts/budgets";
import { parseStackConfig } from "../contracts/config";
import { jwks, publicJwk } from "../handlers/lib/smartBackend";
import {
  ACCOUNT_ID,
  DEPLOYER_ROLE_ARN,
  doc,
  find,
  ofType,
  SIGNING_PUBLIC_KEY,
  settle,
  stackConfig,
  unwrap,
  useStack,
} from "./harness";

const base = `us-east-1:${ACCOUNT_ID}`;
const KEY_ARN = `arn:aws:kms:${base}:key/hoth-key-key-id`;
const SIGNING_KEY_ARN = `arn:aws:kms:${base}:key/hoth-bulk-signing-key-key-id`;
const STEPS = ["initiate", "poll", "download", "check", "delete"];
const sign = {
  Sid: "SignClientAssertions",
  Effect: "Allow",
  Action: "kms:Sign",
  Resource: SIGNING_KEY_ARN,
  Condition: {
    StringEquals: { "kms:SigningAlgorithm": "ECDSA_SHA_384", "kms:MessageType": "RAW" },
  },
};

describe("bulk-source functions and their signing key (Pulumi mocks, dev stack)", () => {
  let platform: ReturnType<typeof program.compose>;
  before(async () => {
    useStack("dev");
    platform = program.compose(parseStackConfig("dev", stackConfig("dev")));
    await settle();
  });

  it("creates an asymmetric P-384 signing key the deployer administers and only the four signing roles may use, for ES384 on raw messages", () => {
    const key = find("aws:kms/key:Key", "hoth-bulk-signing-key");
    assert.deepEqual(
      [key.inputs.keyUsage, key.inputs.customerMasterKeySpec, key.inputs.deletionWindowInDays],
      ["SIGN_VERIFY", "ECC_NIST_P384", 7],
    );
    assert.equal(key.inputs.enableKeyRotation, undefined);
    assert.deepEqual(doc(key).Statement, [
      {
        Sid: "Administer",
        Effect: "Allow",
        Principal: { AWS: [DEPLOYER_ROLE_ARN] },
        Action: KEY_ADMIN_ACTIONS,
        Resource: "*",
      },
      {
        Sid: "SignClientAssertions",
        Effect: "Allow",
        Principal: { AWS: `arn:aws:iam::${ACCOUNT_ID}:root` },
        Action: "kms:Sign",
        Resource: "*",
        Condition: {
          StringEquals: { "kms:SigningAlgorithm": "ECDSA_SHA_384", "kms:MessageType": "RAW" },
          ArnEquals: {
            "aws:PrincipalArn": ["initiate", "poll", "download", "delete"].map(
              (s) => `arn:aws:iam::${ACCOUNT_ID}:role/hoth-dev-bulk-${s}`,
            ),
          },
        },
      },
    ]);
  });

  it("deploys one function per step from the bulk bundle, each with its settings and nothing more", () => {
    const fn = (s: string) => find("aws:lambda/function:Function", `hoth-bulk-${s}-fn`).inputs;
    const sources = JSON.stringify(parseStackConfig("dev", stackConfig("dev")).bulk.sources);
    const signing = {
      BULK_SOURCES: sources,
      SIGNING_KEY_ARN,
      SIGNING_PUBLIC_KEY,
      SIGNING_KEY_SPEC: "ECC_NIST_P384",
    };
    const common = { NODE_OPTIONS: "--enable-source-maps", LOG_LEVEL: "DEBUG" };
    for (const s of STEPS) {
      const f = fn(s);
      assert.deepEqual(
        [f.name, f.runtime, f.architectures, f.handler, f.memorySize, f.timeout],
        [
          `hoth-dev-bulk-${s}`,
          "nodejs22.x",
          ["arm64"],
          "index.handler",
          s === "download" ? 512 : 256,
          s === "download" ? 900 : 60,
        ],
      );
      const env = (f.environment as { variables: Record<string, string> }).variables;
      assert.deepEqual(
        env,
        s === "check"
          ? { ...common, BULK_STEP: s }
          : s === "download" || s === "poll"
            ? {
                ...common,
                BULK_STEP: s,
                ...signing,
                LAKE_BUCKET: "hoth-dev-lake",
                LAKE_KEY_ARN: KEY_ARN,
              }
            : { ...common, BULK_STEP: s, ...signing },
      );
    }
    assert.deepEqual(JSON.parse(sources)[0].name, "local");
  });

  it("scopes each role to exactly its step: sign; the poll writes only task lists, the download reads them and writes only landing/*/bulk/*; both with the lake key via S3", () => {
    const grants = (s: string) =>
      ofType("aws:iam/rolePolicy:RolePolicy")
        .filter((p) => p.inputs.role === `hoth-dev-bulk-${s}`)
        .map((p) => [p.name, doc(p).Statement])
        .sort();
    const logs = (s: string) => [
      `hoth-bulk-${s}-logs-traces`,
      [
        {
          Sid: "WriteLogs",
          Effect: "Allow",
          Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
          Resource: `arn:aws:logs:${base}:log-group:/aws/lambda/hoth-dev-bulk-${s}:*`,
        },
        {
          Sid: "WriteTraces",
          Effect: "Allow",
          Action: ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
          Resource: "*",
        },
      ],
    ];
    const lakeKey = {
      Sid: "LakeKey",
      Effect: "Allow",
      Action: ["kms:GenerateDataKey", "kms:Decrypt"],
      Resource: KEY_ARN,
      Condition: { StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" } },
    };
    const taskLists = "arn:aws:s3:::hoth-dev-lake/landing/*/bulk/*/tasks.json";
    for (const s of ["initiate", "delete"]) {
      assert.deepEqual(grants(s), [[`hoth-bulk-${s}-grants`, [sign]], logs(s)]);
    }
    assert.deepEqual(grants("check"), [logs("check")]);
    assert.deepEqual(grants("poll"), [
      [
        "hoth-bulk-poll-grants",
        [
          sign,
          { Sid: "WriteTaskList", Effect: "Allow", Action: "s3:PutObject", Resource: taskLists },
          lakeKey,
        ],
      ],
      logs("poll"),
    ]);
    assert.deepEqual(grants("download"), [
      [
        "hoth-bulk-download-grants",
        [
          sign,
          {
            Sid: "WriteBulkFiles",
            Effect: "Allow",
            Action: ["s3:PutObject", "s3:AbortMultipartUpload"],
            Resource: "arn:aws:s3:::hoth-dev-lake/landing/*/bulk/*",
          },
          { Sid: "ReadTaskList", Effect: "Allow", Action: "s3:GetObject", Resource: taskLists },
          lakeKey,
        ],
      ],
      logs("download"),
    ]);
  });

  it("wires the bulk states of the deployed definition to these functions", () => {
    const definition = JSON.parse(
      find("aws:sfn/stateMachine:StateMachine", "hoth-machine").inputs.definition as string,
    );
    const fnOf = (state: { Parameters: { FunctionName: string } }) => state.Parameters.FunctionName;
    const S = definition.States;
    assert.deepEqual(
      [
        fnOf(S.InitiateExport),
        fnOf(S.PollExport),
        fnOf(S.DownloadBatch),
        fnOf(S.CheckDownloads),
        fnOf(S.DeleteExport),
        fnOf(S.DeleteAfterFailure),
      ],
      ["initiate", "poll", "download", "check", "delete", "delete"].map(
        (s) => `arn:aws:lambda:${base}:function:hoth-dev-bulk-${s}`,
      ),
    );
    assert.equal(S.InitiateExport.Parameters.Payload.deadlineSeconds, 3600);
    // Files per download batch (hoth:bulk.downloadConcurrency), told to the poll too (its limit)
    assert.deepEqual(
      [S.PollExport.Parameters.Payload.batchFiles, S.DownloadBatch.Parameters.Payload.batchFiles],
      [4, 4],
    );
    assert.deepEqual(S.MoreToDownload.Choices, [
      { Variable: "$.download.done", BooleanEquals: false, Next: "DownloadBatch" },
    ]);
  });

  it("sizes the download function for its batch: 512 MB up to 20 files at once, 16 MB a file beyond", () => {
    assert.deepEqual([1, 4, 20, 21, 40].map(bulkDownloadMemoryMb), [512, 512, 512, 528, 832]);
  });

  it("publishes the public JWKS to the API and as stack outputs, with no private member", async () => {
    const expected = JSON.stringify(
      jwks([publicJwk(new Uint8Array(Buffer.from(SIGNING_PUBLIC_KEY, "base64")), "ES384")]),
    );
    const out = program.outputs(platform);
    assert.equal(await unwrap(out.bulkJwks), expected);
    assert.equal(
      await unwrap(out.bulkJwksUrl),
      `${await unwrap(platform.api.url)}/.well-known/jwks.json`,
    );
    assert.equal(await unwrap(out.bulkSigningKeyArn), SIGNING_KEY_ARN);
    assert.ok(!("d" in JSON.parse(expected).keys[0]));
    const app = find("aws:lambda/function:Function", "hoth-app-fn").inputs;
    assert.equal(
      (app.environment as { variables: Record<string, string> }).variables.BULK_JWKS,
      expected,
    );
  });
});
