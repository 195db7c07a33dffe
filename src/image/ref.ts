import { SiloError } from "../core/errors.ts";

/** A parsed image reference; `canonical` is the fully qualified form silo stores and prints. */
export interface ImageRef {
  /** Registry host as users name it: `docker.io`, `ghcr.io`, `127.0.0.1:5000`. */
  registry: string;
  /** Path inside the registry: `library/python`. */
  repository: string;
  /** Tag; `latest` when the reference names neither tag nor digest. */
  tag?: string;
  /** `sha256:<hex>` when the reference pins one. */
  digest?: string;
  canonical: string;
}

export const DOCKER_HUB = "docker.io";
/** The host Docker Hub's API actually answers on. */
export const DOCKER_HUB_API = "registry-1.docker.io";

// The grammar of github.com/distribution/reference, split into the parts we check one by one.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$/;

const bad = (ref: string, why: string) =>
  new SiloError("E_IMAGE", `invalid image reference \`${ref}\`: ${why}`, "write it as [registry/]name[:tag][@sha256:digest], e.g. python:3.12-slim");

/** `python:3.11-slim` → `docker.io/library/python:3.11-slim`; `ghcr.io/o/r@sha256:…` keeps its digest. */
export function parseImageRef(ref: string): ImageRef {
  const input = ref.trim();
  if (!input) throw bad(ref, "it is empty");
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(ref, `\`${digest}\` is not a sha256 digest`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(ref, `\`${tag}\` is not a valid tag`);
  }
  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf("/");
  if (slash > 0) {
    const first = rest.slice(0, slash);
    // Docker's rule: the first component is a host if it has a dot or a port, or is localhost.
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      registry = first;
      repository = rest.slice(slash + 1);
      if (!HOST.test(registry)) throw bad(ref, `\`${registry}\` is not a valid registry host`);
    }
  }
  if (registry === "index.docker.io" || registry === DOCKER_HUB_API) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes("/")) repository = `library/${repository}`;
  for (const part of repository.split("/"))
    if (!COMPONENT.test(part)) throw bad(ref, `\`${repository}\` is not a valid repository name (lowercase letters, digits, . _ -)`);
  if (!tag && !digest) tag = "latest";
  const canonical = `${registry}/${repository}${tag ? `:${tag}` : ""}${digest ? `@${digest}` : ""}`;
  return { registry, repository, tag, digest, canonical };
}

/** The short name people type: `docker.io/library/python:3.11` → `python:3.11`. */
export function familiarName(ref: ImageRef): string {
  const name = ref.registry === DOCKER_HUB ? ref.repository.replace(/^library\//, "") : `${ref.registry}/${ref.repository}`;
  return `${name}${ref.tag ? `:${ref.tag}` : ""}${ref.digest ? `@${ref.digest.slice(0, 19)}` : ""}`;
}

export const isDigest = (s: string) => DIGEST.test(s);
