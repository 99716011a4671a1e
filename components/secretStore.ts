import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { policy, secretReadStatements } from "../contracts/iam";
import { keyPolicy, secretResourcePolicy } from "./secretPolicies";

export const SECRET_NAMES = ["okta", "app", "tokenization"] as const;
export type SecretName = (typeof SECRET_NAMES)[number];

/** The non-secret Okta settings the authorizer reads from Secrets Manager. */
export interface OktaSettings {
  issuer: string;
  audience: string;
  allowedClientIds: string[];
  /** @default `${issuer}/v1/keys` (applied by the authorizer) */
  jwksUri?: string;
}

export interface SecretStoreArgs {
  /** Naming prefix of the stack; secrets are named `${prefix}/<name>`. */
  prefix: string;
  region: string;
  accountId: pulumi.Input<string>;
  /** Principals that administer the key and secrets (the deployer). */
  adminArns: pulumi.Input<pulumi.Input<string>[]>;
  okta: pulumi.Input<OktaSettings>;
  /** Days a deleted key or secret can still be recovered (7..30). @default 30 */
  deletionWindowInDays?: number;
  /** Services through which the account's roles may use the key. @default ["secretsmanager"] */
  viaServices?: string[];
  /** Service principals that may encrypt data with the key for this account. @default [] */
  servicePrincipals?: string[];
  /**
   * CloudTrail trails that encrypt their log files with the key. Their ARNs
   * are known from their names before they exist (the trail needs the key).
   * @default []
   */
  cloudTrailArns?: pulumi.Input<pulumi.Input<string>[]>;
}

/**
 * A customer-managed KMS key and the stack's three secrets: the Okta settings
 * (built from stack config), a generated app secret and a generated
 * tokenization key. Readers are granted per secret with `grantRead`; `seal()`
 * then writes resource policies that deny every other principal.
 */
export class SecretStore extends pulumi.ComponentResource {
  readonly key: aws.kms.Key;
  readonly keyArn: pulumi.Output<string>;
  readonly secretArns: Record<SecretName, pulumi.Output<string>>;
  readonly secretNames: Record<SecretName, string>;

  private readonly secrets: Record<SecretName, aws.secretsmanager.Secret>;
  private readonly readers: Record<SecretName, pulumi.Input<string>[]> = {
    okta: [],
    app: [],
    tokenization: [],
  };
  private sealed = false;

  constructor(
    private readonly name: string,
    private readonly args: SecretStoreArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("hoth:secrets:SecretStore", name, {}, opts);
    const deletionWindowInDays = args.deletionWindowInDays ?? 30;
    const viaServices = args.viaServices ?? ["secretsmanager"];
    const child = { parent: this };

    this.key = new aws.kms.Key(
      `${name}-key`,
      {
        description: `HOTH ${args.prefix}: secrets, logs and data at rest`,
        enableKeyRotation: true,
        deletionWindowInDays,
        policy: pulumi
          .all([args.accountId, args.adminArns, args.cloudTrailArns ?? []])
          .apply(([accountId, adminArns, cloudTrailArns]) =>
            JSON.stringify(
              keyPolicy({
                accountId,
                region: args.region,
                adminArns,
                viaServices,
                logGroupPrefix: args.prefix,
                servicePrincipals: args.servicePrincipals ?? [],
                cloudTrailArns,
              }),
            ),
          ),
      },
      child,
    );
    new aws.kms.Alias(
      `${name}-key-alias`,
      { name: `alias/${args.prefix}`, targetKeyId: this.key.keyId },
      child,
    );
    this.keyArn = this.key.arn;

    this.secretNames = {
      okta: `${args.prefix}/okta-settings`,
      app: `${args.prefix}/app`,
      tokenization: `${args.prefix}/tokenization-key`,
    };
    const secret = (id: SecretName, description: string) =>
      new aws.secretsmanager.Secret(
        `${name}-${id}`,
        {
          name: this.secretNames[id],
          description,
          kmsKeyId: this.key.arn,
          recoveryWindowInDays: deletionWindowInDays,
        },
        child,
      );
    this.secrets = {
      okta: secret("okta", "Okta settings for the API authorizer (issuer, audience, client ids)"),
      app: secret("app", "Application secret of the API handlers"),
      tokenization: secret("tokenization", "HMAC key that tokenizes direct identifiers"),
    };

    const appValue = new random.RandomPassword(
      `${name}-app-value`,
      { length: 48, special: false },
      child,
    );
    const tokenizationValue = new random.RandomBytes(
      `${name}-tokenization-value`,
      { length: 32 },
      child,
    );
    const values: Record<SecretName, pulumi.Input<string>> = {
      okta: pulumi.output(args.okta).apply((o) => JSON.stringify(o)),
      app: pulumi.jsonStringify({ signingKey: appValue.result }),
      tokenization: pulumi.jsonStringify({ key: tokenizationValue.base64 }),
    };
    for (const id of SECRET_NAMES) {
      new aws.secretsmanager.SecretVersion(
        `${name}-${id}-version`,
        { secretId: this.secrets[id].id, secretString: pulumi.secret(values[id]) },
        child,
      );
    }

    this.secretArns = {
      okta: this.secrets.okta.arn,
      app: this.secrets.app.arn,
      tokenization: this.secrets.tokenization.arn,
    };
    this.registerOutputs({ keyArn: this.keyArn, secretArns: this.secretArns });
  }

  /**
   * Lets `role` read exactly one secret (and decrypt it only through Secrets
   * Manager), and names the role in that secret's resource policy. The
   * RolePolicy is named `${name}` and belongs to `opts.parent` (the caller).
   */
  grantRead(
    secret: SecretName,
    role: aws.iam.Role,
    name: string,
    opts: pulumi.CustomResourceOptions,
  ): aws.iam.RolePolicy {
    if (this.sealed) {
      throw new Error(`grantRead('${secret}') after seal(): grant every reader before seal()`);
    }
    this.readers[secret].push(role.arn);
    return new aws.iam.RolePolicy(
      name,
      {
        role: role.name,
        policy: pulumi
          .all([this.secretArns[secret], this.keyArn])
          .apply(([secretArn, keyArn]) =>
            JSON.stringify(policy(...secretReadStatements(secretArn, keyArn, this.args.region))),
          ),
      },
      opts,
    );
  }

  /** Writes the resource policies; call once, after every `grantRead`. */
  seal(): void {
    if (this.sealed) throw new Error("seal() called twice");
    this.sealed = true;
    for (const id of SECRET_NAMES) {
      new aws.secretsmanager.SecretPolicy(
        `${this.name}-${id}-policy`,
        {
          secretArn: this.secrets[id].arn,
          blockPublicPolicy: true,
          policy: pulumi
            .all([pulumi.all(this.readers[id]), this.args.adminArns])
            .apply(([readers, admins]) => JSON.stringify(secretResourcePolicy(readers, admins))),
        },
        { parent: this },
      );
    }
  }
}
