import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { parseStackConfig, type StackConfig } from "./components/config";
import { SecretStore } from "./components/secretStore";

/**
 * The HOTH program: reads the typed stack configuration and composes the
 * components. No resource is created here directly; components take what they
 * need from each other through their args.
 */
function compose(config: StackConfig) {
  const provider = new aws.Provider(config.prefix, {
    region: config.region as aws.Region,
    defaultTags: { tags: config.tags },
  });
  const opts = { providers: { aws: provider }, protect: config.protect };
  const caller = aws.getCallerIdentityOutput({}, { provider });
  // The deployer's role (not its STS session) administers keys and secrets.
  const deployer = aws.iam.getSessionContextOutput({ arn: caller.arn }, { provider });

  const secrets = new SecretStore(
    "hoth",
    {
      prefix: config.prefix,
      region: config.region,
      accountId: caller.accountId,
      adminArns: [deployer.issuerArn],
      okta: {
        issuer: config.okta.issuer,
        audience: config.okta.audience,
        allowedClientIds: config.okta.allowedClientIds,
        jwksUri: config.okta.jwksUri,
      },
      deletionWindowInDays: config.kmsDeletionWindowDays,
      viaServices: ["secretsmanager"],
    },
    opts,
  );
  secrets.seal();

  return { provider, secrets };
}

/** Stack outputs: what operators and the pipeline need to find. */
function outputs(platform: ReturnType<typeof compose>) {
  return {
    keyArn: platform.secrets.keyArn,
    oktaSecretArn: platform.secrets.secretArns.okta,
    appSecretArn: platform.secrets.secretArns.app,
    tokenizationSecretArn: platform.secrets.secretArns.tokenization,
  };
}

function loadStackConfig(): StackConfig {
  return parseStackConfig(pulumi.getStack(), pulumi.runtime.allConfig());
}

/**
 * Pulumi invokes the module's export when it is a function; `compose` and
 * `outputs` ride along so tests and `npm run plan` can run one stack's program
 * under mocks with a config of their choosing.
 */
export = Object.assign(() => outputs(compose(loadStackConfig())), { compose, outputs });
