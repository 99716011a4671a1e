import * as assert from "node:assert/strict";
import * as aws from "@pulumi/aws";

import program = require("../index");

import { parseStackConfig } from "../contracts/config";
import { checkAll } from "../policy/rules";
import { policyContext } from "../scripts/policy-config";
import {
  find,
  ofType,
  protectedDescendants,
  recorded,
  settle,
  stackConfig,
  useStack,
} from "./harness";
import { mockedGraph } from "./support/graph";

const STACKS = ["dev", "test", "prod"] as const;

async function deploy(stack: string) {
  useStack(stack);
  const platform = program.compose(parseStackConfig(stack, stackConfig(stack)));
  await settle();
  return platform;
}

describe("the whole program under mocks", () => {
  for (const stack of STACKS) {
    describe(`stack ${stack}`, () => {
      it("passes every rule of the compliance policy pack", async () => {
        await deploy(stack);
        assert.deepEqual(checkAll(mockedGraph(), policyContext(stack)), []);
      });

      it("gives the AWS provider the stack's required tags as defaultTags", async () => {
        await deploy(stack);
        const provider = find("pulumi:providers:aws", `hoth-${stack}`);
        const tags = JSON.parse(provider.inputs.defaultTags as string).tags;
        assert.deepEqual(tags, {
          project: "hoth",
          stack,
          owner: "data-platform-team",
          "data-classification": "phi",
        });
        const unmanaged = recorded.filter(
          (r) =>
            r.type.startsWith("aws:") &&
            !r.provider?.includes(`pulumi:providers:aws::hoth-${stack}::`),
        );
        assert.deepEqual(
          unmanaged.map((r) => r.name),
          [],
        );
      });
    });
  }

  it("fails the compliance check when a resource breaks a rule", async () => {
    // Prepare: the dev program plus one bucket with none of the required settings
    await deploy("dev");
    new aws.s3.Bucket("rogue", { bucket: "rogue-bucket" });
    await settle();
    // Act
    const violations = checkAll(mockedGraph());
    // Assess
    assert.deepEqual(
      violations.map((v) => [v.rule, v.message]),
      [
        ["s3-bucket-kms-encryption", "bucket rogue has no SSE-KMS default encryption"],
        ["s3-public-access-blocked", "bucket rogue does not block all public access"],
        ["s3-tls-only", "bucket rogue has no policy denying aws:SecureTransport=false"],
        ["required-tags", "rogue lacks tags: project, stack, owner, data-classification"],
      ],
    );
  });

  it("protects stateful resources only where the stack turns protection on", async () => {
    const prod = await deploy("prod");
    // The stack key, and the bulk signing key (asymmetric: no automatic rotation).
    assert.deepEqual(
      ofType("aws:kms/key:Key").map((k) => [k.name, k.inputs.keyUsage ?? "ENCRYPT_DECRYPT"]),
      [
        ["hoth-key", "ENCRYPT_DECRYPT"],
        ["hoth-bulk-signing-key", "SIGN_VERIFY"],
      ],
    );
    assert.deepEqual(protectedDescendants(prod.secrets), [
      "hoth-app",
      "hoth-app-policy",
      "hoth-app-value",
      "hoth-app-version",
      "hoth-key",
      "hoth-key-alias",
      "hoth-okta",
      "hoth-okta-policy",
      "hoth-okta-version",
      "hoth-tokenization",
      "hoth-tokenization-policy",
      "hoth-tokenization-value",
      "hoth-tokenization-version",
    ]);
    const dev = await deploy("dev");
    assert.deepEqual(protectedDescendants(dev.secrets), []);
  });
});
