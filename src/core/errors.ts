/** Exit codes silo itself uses (docker's convention); a tool's own code passes through unchanged. */
export const EXIT = {
  /** silo failed before the command started (bad config, pull failure, sandbox setup). */
  FAILURE: 125,
  /** The command was found but cannot be executed. */
  CANNOT_EXECUTE: 126,
  /**
   * The command was not found inside the sandbox, or a shim's fall-through found no other command on PATH
   * (as a shell would). A tool that is not installed is silo's own failure (FAILURE), as docker run of a
   * missing image.
   */
  NOT_FOUND: 127,
} as const;

export type SiloErrorCode =
  | "E_USAGE"
  | "E_CONFIG"
  | "E_REGISTRY"
  | "E_TOOL_NOT_INSTALLED"
  | "E_TOOL_UNKNOWN"
  | "E_IMAGE"
  | "E_DRIVER"
  | "E_SANDBOX"
  | "E_NETWORK"
  | "E_LSP"
  | "E_IO";

/** The one error type silo throws on purpose: a message for the user, an optional hint with the fix. */
export class SiloError extends Error {
  override name = "SiloError";
  constructor(
    readonly code: SiloErrorCode,
    message: string,
    readonly hint?: string,
    readonly exitCode: number = EXIT.FAILURE,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

