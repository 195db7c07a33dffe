import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { SiloError } from "../core/errors.ts";
import { homePaths, type HomePaths } from "../core/paths.ts";
import { localImage, readMarker } from "./local.ts";

/**
 * An ext4 image of a pulled rootfs, for the VM drivers: SILO_HOME/images/ext4/<hex>.ext4, made once with
 * `mkfs.ext4 -d` (e2fsprogs; works rootless: files keep the owner they have on disk, the root directory is
 * owned by 0:0). Sized at the unpacked size plus a quarter plus 64 MiB, one inode per 8 KiB.
 */
export async function exportExt4(digest: string, home: HomePaths = homePaths()): Promise<string> {
  const local = localImage(digest, home);
  if (!local) throw new SiloError("E_IMAGE", `no complete rootfs for ${digest.slice(0, 19)}`, "pull the image first (silo install / silo pull)");
  const hex = digest.slice("sha256:".length);
  const dir = join(home.images, "ext4");
  const out = join(dir, `${hex}.ext4`);
  if (existsSync(out)) return out;
  const mkfs = Bun.which("mkfs.ext4") ?? Bun.which("mkfs.ext4", { PATH: "/usr/sbin:/sbin" }) ?? Bun.which("mke2fs", { PATH: "/usr/sbin:/sbin" });
  if (!mkfs) throw new SiloError("E_IMAGE", "mkfs.ext4 is not installed", "install e2fsprogs (apt-get install e2fsprogs)");
  mkdirSync(dir, { recursive: true });
  const unpacked = readMarker(home, digest)?.sizes.unpacked ?? 0;
  const mib = Math.ceil((unpacked * 1.25) / (1 << 20)) + 64;
  const tmp = `${out}.${process.pid}.tmp`;
  const args = [mkfs, "-q", "-F", "-t", "ext4", "-i", "8192", "-E", "root_owner=0:0", "-L", "silo-rootfs", "-d", local.rootfs, tmp, `${mib}M`];
  const p = Bun.spawn(args, { stdout: "ignore", stderr: "pipe" });
  const [code, err] = await Promise.all([p.exited, new Response(p.stderr).text()]);
  if (code !== 0) {
    rmSync(tmp, { force: true });
    throw new SiloError("E_IMAGE", `mkfs.ext4 failed for ${digest.slice(0, 19)}: ${err.trim().split("\n").pop()}`, "e2fsprogs 1.43+ is needed for -d");
  }
  renameSync(tmp, out);
  return out;
}
