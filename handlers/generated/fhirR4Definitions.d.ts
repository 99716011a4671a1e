// Types of the generated FHIR R4 definitions (scripts/build-fhir-definitions.ts).
export declare const structureDefinitions: unknown[];
export declare const primitives: Record<string, string>;
export declare const codes: Record<string, string[]>;
export declare const unexpanded: Record<string, string>;
export declare const codeSystems: Record<string, string[]>;
