import { describe, expect, test } from "bun:test";
import { closeSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { homePaths } from "../../../src/core/paths.ts";
import { openDir } from "../../../src/core/beneath.ts";
import { caBundleSpec, certificateBlocks, ensureCaBundle, FALLBACK_PATH, readCaCertificates, resolveInImage } from "../../../src/app/ca-bundle.ts";
import { tmp } from "../../helpers/silo.ts";

function makeCa(dir: string, cn: string): { cert: string; key: string } {
  const cert = join(dir, `${cn}.pem`);
  const key = join(dir, `${cn}-key.pem`);
  const r = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", `/CN=${cn}`]);
  if (r.status !== 0) throw new Error(String(r.stderr));
  return { cert, key };
}

describe("ca-bundle", () => {
  const dir = tmp("silo-ca-unit-");
  const a = makeCa(dir, "a");
  const b = makeCa(dir, "b");

  test("only CERTIFICATE blocks are taken: a private key beside them never is", () => {
    const mixed = join(dir, "mixed.pem");
    writeFileSync(mixed, readFileSync(a.key, "utf8") + "junk\n" + readFileSync(a.cert, "utf8").replaceAll("\n", "\r\n"));
    const certs = readCaCertificates([mixed, a.cert], () => null);
    expect(certs).toHaveLength(1); // the same certificate twice, once
    expect(certs[0]).toStartWith("-----BEGIN CERTIFICATE-----\n");
    expect(certs.join("")).not.toContain("PRIVATE KEY");
    expect(certificateBlocks(readFileSync(a.key, "utf8"))).toEqual([]);
  });

  test("a bad entry names the file, and the config line when the caller finds one", () => {
    expect(() => readCaCertificates([join(dir, "nope.pem")], () => "/g/silo.toml:7")).toThrow(`/g/silo.toml:7: [network] caCertificates: ${join(dir, "nope.pem")} does not exist`);
    expect(() => readCaCertificates([a.key], () => null)).toThrow("holds no PEM CERTIFICATE block");
    expect(() => readCaCertificates([dir], () => null)).toThrow("is not a regular file");
  });

  test("symlinks in an image resolve inside its rootfs, never on the host", () => {
    const root = tmp("silo-ca-rootfs-");
    mkdirSync(join(root, "etc/pki/tls/certs"), { recursive: true });
    mkdirSync(join(root, "etc/pki/ca-trust/extracted/pem"), { recursive: true });
    writeFileSync(join(root, "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"), readFileSync(a.cert));
    symlinkSync("/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", join(root, "etc/pki/tls/certs/ca-bundle.crt"));
    mkdirSync(join(root, "etc/ssl"), { recursive: true });
    symlinkSync("../pki/tls/certs", join(root, "etc/ssl/certs")); // a directory link, relative
    symlinkSync(a.cert, join(root, "etc/ssl/cert.pem")); // a host path: inside the image it is nothing
    symlinkSync("loop", join(root, "loop"));
    const fd = openDir(root);
    try {
      expect(resolveInImage(fd, "/etc/pki/tls/certs/ca-bundle.crt")).toBe("/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem");
      expect(resolveInImage(fd, "/etc/ssl/certs/ca-bundle.crt")).toBe("/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem");
      expect(resolveInImage(fd, "/etc/ssl/cert.pem")).toBeNull();
      expect(resolveInImage(fd, "/loop")).toBeNull();
      expect(resolveInImage(fd, "/etc/pki")).toBeNull(); // a directory
    } finally {
      closeSync(fd);
    }
    const home = homePaths(tmp("silo-ca-home-"));
    const certs = readCaCertificates([b.cert], () => null);
    const bundle = ensureCaBundle(home, root, certs);
    expect(bundle.targets).toEqual(["/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"]);
    const text = readFileSync(bundle.file, "utf8");
    expect(text).toStartWith(readFileSync(a.cert, "utf8")); // the image's, unchanged, first
    expect(text).toContain(certs[0]!);
    // Reused: the same file, not rewritten.
    const again = ensureCaBundle(home, root, certs);
    expect(again).toEqual(bundle);
    // A CA the image already has is not appended twice.
    expect(readFileSync(ensureCaBundle(home, root, readCaCertificates([a.cert], () => null)).file, "utf8")).toBe(readFileSync(a.cert, "utf8"));
  });

  test("an image without a bundle gets the CAs alone, at the Debian path where it can be made, else at silo's; [env] values win", () => {
    const home = homePaths(tmp("silo-ca-home-"));
    const certs = readCaCertificates([a.cert, b.cert], () => null);
    expect(ensureCaBundle(home, tmp("silo-ca-empty-"), certs).targets).toEqual(["/etc/ssl/certs/ca-certificates.crt"]);
    const root = tmp("silo-ca-linked-");
    mkdirSync(join(root, "etc"));
    symlinkSync("/nowhere", join(root, "etc/ssl")); // a mount point under a symlink would be made outside the root
    const bundle = ensureCaBundle(home, root, certs);
    expect(bundle.targets).toEqual([FALLBACK_PATH]);
    expect(readFileSync(bundle.file, "utf8").match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    const spec = caBundleSpec(bundle, { SSL_CERT_FILE: "/mine.pem" });
    expect(spec.mounts).toEqual([{ host: bundle.file, guest: FALLBACK_PATH, readonly: true, kind: "file" }]);
    expect(spec.env.SSL_CERT_FILE).toBeUndefined();
    expect(spec.env.NODE_EXTRA_CA_CERTS).toBe(FALLBACK_PATH);
    expect(Object.keys(spec.env)).toHaveLength(6);
  });
});
