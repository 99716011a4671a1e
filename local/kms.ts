import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import type { KmsApi } from "../handlers/lib/smartBackend";

/**
 * A stand-in for an asymmetric KMS signing key (the local stack has no KMS):
 * `GetPublicKey` answers the DER SubjectPublicKeyInfo, the key spec and usage;
 * `Sign` with `MessageType: RAW` hashes the message with the algorithm's
 * SHA-384 and returns a PKCS #1 v1.5 or DER-encoded ECDSA signature, as KMS
 * documents (https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html).
 * Only the key id it was created with is known; anything else is refused the
 * way KMS refuses it (NotFoundException), as is a mismatched algorithm.
 */
export class LocalKms implements KmsApi {
  readonly keyId: string;
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  /** Sign calls seen (key id and algorithm only), for tests. */
  readonly calls: { KeyId: string; SigningAlgorithm: string }[] = [];

  constructor(
    readonly keySpec: "RSA_2048" | "ECC_NIST_P384" = "ECC_NIST_P384",
    keyId = "local-signing-key",
  ) {
    this.keyId = keyId;
    const pair =
      keySpec === "RSA_2048"
        ? generateKeyPairSync("rsa", { modulusLength: 2048 })
        : generateKeyPairSync("ec", { namedCurve: "P-384" });
    this.privateKey = pair.privateKey;
    this.publicKey = pair.publicKey;
  }

  async getPublicKey(input: { KeyId: string }) {
    this.check(input.KeyId);
    return {
      PublicKey: new Uint8Array(this.publicKey.export({ format: "der", type: "spki" })),
      KeySpec: this.keySpec,
      KeyUsage: "SIGN_VERIFY",
    };
  }

  async sign(input: Parameters<KmsApi["sign"]>[0]) {
    this.check(input.KeyId);
    this.calls.push({ KeyId: input.KeyId, SigningAlgorithm: input.SigningAlgorithm });
    const expected = this.keySpec === "RSA_2048" ? "RSASSA_PKCS1_V1_5_SHA_384" : "ECDSA_SHA_384";
    if (input.SigningAlgorithm !== expected || input.MessageType !== "RAW") {
      throw Object.assign(new Error("Unsupported signing algorithm for this key"), {
        name: "InvalidKeyUsageException",
      });
    }
    if (input.Message.length > 4096) {
      throw Object.assign(new Error("Message exceeds 4096 bytes"), { name: "ValidationException" });
    }
    const signature = sign("sha384", input.Message, { key: this.privateKey, dsaEncoding: "der" });
    return { Signature: new Uint8Array(signature) };
  }

  private check(keyId: string): void {
    if (keyId !== this.keyId) {
      throw Object.assign(new Error(`Key '${keyId}' does not exist`), {
        name: "NotFoundException",
      });
    }
  }
}
