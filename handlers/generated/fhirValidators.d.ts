// Types of the generated standalone validators (scripts/build-fhir-validators.ts).
import type { ErrorObject } from "ajv";
type Validator = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };
export declare const Patient: Validator;
export declare const Coverage: Validator;
export declare const Bundle: Validator;
