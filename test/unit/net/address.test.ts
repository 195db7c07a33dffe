import { describe, expect, test } from "bun:test";
import { canonicalIp, classifyAddress, isAddressPermitted, ownAddressSet, parseCidr, parseIPv4Loose, parseIPv6 } from "../../../src/net/address.ts";

describe("classifyAddress", () => {
  test.each([
    ["8.8.8.8", "public"],
    ["1.1.1.1", "public"],
    ["2606:4700::1111", "public"],
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["::1", "loopback"],
    ["10.0.0.1", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["172.32.0.1", "public"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "private"],
    ["100.127.255.255", "private"],
    ["100.128.0.1", "public"],
    ["169.254.169.254", "metadata"],
    ["169.254.1.1", "link-local"],
    ["fd00:ec2::254", "metadata"],
    ["fd00::1", "private"],
    ["fc00::1", "private"],
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["::", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast"],
    ["ff02::1", "multicast"],
    ["255.255.255.255", "reserved"],
    ["240.0.0.1", "reserved"],
    ["192.0.2.1", "reserved"],
    ["2001:db8::1", "reserved"],
    ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "reserved"],
    // IPv4 hidden in IPv6
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["0:0:0:0:0:ffff:7f00:0001", "loopback"],
    ["[::ffff:169.254.169.254]", "metadata"],
    ["::ffff:a9fe:a9fe", "metadata"],
    ["::ffff:10.0.0.1", "private"],
    ["::ffff:8.8.8.8", "public"],
    ["::127.0.0.1", "loopback"],
    ["::ffff:0:127.0.0.1", "loopback"],
    ["64:ff9b::7f00:1", "loopback"],
    ["64:ff9b::8.8.8.8", "public"],
    ["64:ff9b:1::1", "private"],
    ["2002:7f00:1::1", "loopback"],
    ["2002:c0a8:101::1", "private"],
    ["2002:808:808::1", "public"],
    // not addresses
    ["example.com", "invalid"],
    ["1.2.3", "invalid"],
    ["256.1.1.1", "invalid"],
    ["1.2.3.4.5", "invalid"],
    ["0x7f.0.0.1", "invalid"],
    ["2130706433", "invalid"],
    ["1:2:3:4:5:6:7:8:9", "invalid"],
    ["1::2::3", "invalid"],
    ["::ffff:999.0.0.1", "invalid"],
  ])("%s is %s", (addr, kind) => {
    expect(classifyAddress(addr)).toBe(kind as ReturnType<typeof classifyAddress>);
  });
});

describe("parseIPv6 / canonicalIp", () => {
  test("expands :: and dotted tails", () => {
    expect(parseIPv6("::")).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(parseIPv6("1::")).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(parseIPv6("::ffff:1.2.3.4")).toEqual([0, 0, 0, 0, 0, 0xffff, 0x102, 0x304]);
    expect(parseIPv6("1:2:3:4:5:6:7:8")).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(parseIPv6("1:2:3:4:5:6:7")).toBeNull();
  });
  test("different spellings of one address agree", () => {
    expect(canonicalIp("::1")).toBe(canonicalIp("0:0:0:0:0:0:0:1"));
    expect(canonicalIp("::ffff:127.0.0.1")).toBe(canonicalIp("::ffff:7f00:1"));
    expect(canonicalIp("example.com")).toBeNull();
    expect(canonicalIp("::ffff:127.0.0.1")).toBe("127.0.0.1");
    expect(canonicalIp("0x7f.1")).toBe("127.0.0.1");
    expect(canonicalIp("fd00::1")).toBe("fd00:0:0:0:0:0:0:1");
  });
});

describe("parseIPv4Loose / parseCidr", () => {
  test("inet_aton's forms", () => {
    expect(parseIPv4Loose("2130706433")).toBe(0x7f000001);
    expect(parseIPv4Loose("127.1")).toBe(0x7f000001);
    expect(parseIPv4Loose("127.0.1")).toBe(0x7f000001);
    expect(parseIPv4Loose("0x7f.0.0.0x1")).toBe(0x7f000001);
    expect(parseIPv4Loose("0377.0377.0377.0377")).toBe(0xffffffff);
    expect(parseIPv4Loose("4294967295")).toBe(0xffffffff);
    for (const bad of ["4294967296", "256.1", "1.256.1", "1.2.3.4.5", "08", "0x", "1..2", "", "a.b", "1.2.3.-4"])
      expect([bad, parseIPv4Loose(bad)]).toEqual([bad, bad === "0x" ? 0 : null]);
  });
  test("ranges: first and last address", () => {
    expect(parseCidr("10.1.2.3/8")).toMatchObject({ first: "10.0.0.0", last: "10.255.255.255" });
    expect(parseCidr("0.0.0.0/0")).toMatchObject({ first: "0.0.0.0", last: "255.255.255.255" });
    expect(parseCidr("fd00::/8")).toMatchObject({ first: "fd00:0:0:0:0:0:0:0", last: "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" });
    expect(parseCidr("10.0.0.0/33")).toBeNull();
    expect(parseCidr("::/129")).toBeNull();
    expect(parseCidr("example.com/8")).toBeNull();
  });
});

describe("isAddressPermitted", () => {
  const none = { explicit: false, hostAccess: false };
  test("public is always fine; the rest is refused by default", () => {
    expect(isAddressPermitted("public", none)).toBe(true);
    for (const k of ["loopback", "private", "link-local", "metadata", "unspecified", "multicast", "reserved"] as const)
      expect(isAddressPermitted(k, none)).toBe(false);
  });
  test("an exactly named host lifts the refusal", () => {
    expect(isAddressPermitted("loopback", { explicit: true, hostAccess: false })).toBe(true);
    expect(isAddressPermitted("metadata", { explicit: true, hostAccess: false })).toBe(true);
  });
  test("hostAccess lifts it for the host's services only: never link-local or metadata", () => {
    expect(isAddressPermitted("loopback", { explicit: false, hostAccess: true })).toBe(true);
    expect(isAddressPermitted("private", { explicit: false, hostAccess: true })).toBe(true);
    for (const k of ["metadata", "link-local", "multicast", "reserved", "unspecified"] as const)
      expect(isAddressPermitted(k, { explicit: false, hostAccess: true })).toBe(false);
  });
  test("every known metadata and credential endpoint is metadata, in any spelling", () => {
    for (const a of ["169.254.169.254", "169.254.170.2", "169.254.169.253", "100.100.100.200", "192.0.0.192", "::ffff:100.100.100.200", "fe80::a9fe:a9fe"])
      expect(["metadata", "link-local"]).toContain(classifyAddress(a));
    expect(classifyAddress("169.254.170.2")).toBe("metadata");
    expect(classifyAddress("100.100.100.200")).toBe("metadata");
    expect(classifyAddress("192.0.0.192")).toBe("metadata");
  });
  test("never for something that is not an address", () => {
    expect(isAddressPermitted("invalid", { explicit: true, hostAccess: true })).toBe(false);
  });
});

describe("the host's own addresses (ownAddressSet)", () => {
  const own = ownAddressSet(["127.0.0.1", "::1", "8.8.8.8", "10.0.0.5", "2001:4860:4860::8888", "fe80::1%eth0", "169.254.169.254", "not-an-address"]);
  test("an address of the host's interfaces is `host` whatever its range, in any spelling", () => {
    for (const a of ["8.8.8.8", "::ffff:8.8.8.8", "::ffff:808:808", "64:ff9b::8.8.8.8", "10.0.0.5", "2001:4860:4860::8888", "2001:4860:4860:0:0:0:0:8888", "fe80::1"])
      expect([a, classifyAddress(a, own)]).toEqual([a, "host"]);
    // Without the list (or for another address) the range decides, as before.
    expect(classifyAddress("8.8.8.8")).toBe("public");
    expect(classifyAddress("8.8.4.4", own)).toBe("public");
    expect(classifyAddress("10.0.0.6", own)).toBe("private");
  });
  test("loopback, unspecified and metadata keep their class (metadata stays closed to hostAccess)", () => {
    expect(classifyAddress("127.0.0.1", own)).toBe("loopback");
    expect(classifyAddress("::1", own)).toBe("loopback");
    expect(classifyAddress("169.254.169.254", own)).toBe("metadata");
    expect(ownAddressSet(["::ffff:8.8.8.8", "junk"])).toEqual(new Set(["8.8.8.8"]));
  });
  test("hostAccess opens it, like loopback; an exact name does too", () => {
    expect(isAddressPermitted("host", { explicit: false, hostAccess: false })).toBe(false);
    expect(isAddressPermitted("host", { explicit: false, hostAccess: true })).toBe(true);
    expect(isAddressPermitted("host", { explicit: true, hostAccess: false })).toBe(true);
  });
});
