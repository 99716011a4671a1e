declare module "asl-validator" {
  function aslValidator(definition: unknown): {
    isValid: boolean;
    errors: unknown[];
    errorsText: (separator?: string) => string;
  };
  export = aslValidator;
}
