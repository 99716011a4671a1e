import {
  GetSecretValueCommand,
  type GetSecretValueCommandOutput,
  type SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";

/** A secret value and the metadata that may be shown (everything but `value`). */
export interface SecretRecord {
  arn: string;
  name: string;
  versionId: string;
  /** When this version was created, i.e. when the value last changed. */
  createdDate?: Date;
  value: string;
}

/** The secret could not be read; `cause` carries the AWS error (never the value). */
export class SecretUnavailableError extends Error {
  constructor(secretId: string, options?: ErrorOptions) {
    super(`Secret ${secretId} could not be read`, options);
    this.name = "SecretUnavailableError";
  }
}

interface Entry {
  record?: SecretRecord;
  expiresAt: number;
  inFlight?: Promise<SecretRecord>;
}

/**
 * A per-container cache of secrets with a TTL. Concurrent reads of the same
 * secret share one GetSecretValue call, so a burst of requests costs one read
 * per TTL however many arrive at once. A failed read is not cached.
 */
export class SecretCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly client: SecretsManagerClient,
    private readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The cached record, or a fresh read when expired, absent or `refresh` is set. */
  get(secretId: string, { refresh = false } = {}): Promise<SecretRecord> {
    const entry = this.entries.get(secretId) ?? { expiresAt: 0 };
    this.entries.set(secretId, entry);
    if (entry.inFlight) return entry.inFlight;
    if (!refresh && entry.record && this.now() < entry.expiresAt) {
      return Promise.resolve(entry.record);
    }
    entry.inFlight = this.read(secretId)
      .then((record) => {
        entry.record = record;
        entry.expiresAt = this.now() + this.ttlSeconds * 1000;
        return record;
      })
      .finally(() => {
        entry.inFlight = undefined;
      });
    return entry.inFlight;
  }

  private async read(secretId: string): Promise<SecretRecord> {
    let out: GetSecretValueCommandOutput;
    try {
      out = await this.client.send(new GetSecretValueCommand({ SecretId: secretId }));
    } catch (cause) {
      throw new SecretUnavailableError(secretId, { cause });
    }
    if (out.SecretString === undefined || !out.ARN || !out.Name || !out.VersionId) {
      throw new SecretUnavailableError(secretId, { cause: new Error("not a string secret") });
    }
    return {
      arn: out.ARN,
      name: out.Name,
      versionId: out.VersionId,
      createdDate: out.CreatedDate,
      value: out.SecretString,
    };
  }
}
