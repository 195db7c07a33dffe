/*
 * silo-stage: the set-up stage of a bwrap sandbox, as one small static program instead of
 * `unshare` + `sh` + `mount` (and, with network relays, a second silo process). It is compiled by
 * scripts/build.ts, embedded in the silo executable and written to SILO_HOME/libexec on first use;
 * argv.ts (buildNativeStageArgv) is the only place that builds its command line.
 *
 *   silo-stage PARENT RUNDIR LOWERDIRS UPPER WORK FALLBACK NET [IP:PORT ...] -- BWRAP ARGS...
 *
 *   1. a new user namespace (root inside, the invoking user outside), a mount namespace and, when NET
 *      is 1, a network namespace with loopback up;
 *   2. the overlay: LOWERDIRS (top first, ':'-joined) read-only under UPPER, mounted on RUNDIR/root;
 *      when FALLBACK is 1 and UPPER's filesystem cannot hold an overlay upper, a tmpfs upper instead;
 *   3. with NET: a listening TCP socket on each IP:PORT inside the new network namespace, all of them
 *      sent to silo over fd 7 (SCM_RIGHTS). silo accepts on them itself and relays each connection to
 *      its host-side proxy, so nothing but those sockets leads out of the namespace. Connections made
 *      before silo accepts wait in the listen backlog; the command needs no extra synchronisation;
 *   4. exec bwrap, with its JSON status on fd 8 (RUNDIR/status).
 *
 * Failures before bwrap: the reason goes to RUNDIR/err and the exit code is 125 (silo reports it).
 * Nothing here is a sandbox by itself; bwrap is, inside what this sets up.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define EXIT_STAGE 125
#define FD_SEND 7
#define FD_STATUS 8
#define MAX_LISTEN 64

static const char *rundir = ".";

static void fail(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char path[4096];
  snprintf(path, sizeof path, "%s/err", rundir);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd >= 0) {
    dprintf(fd, "%s\n", msg);
    close(fd);
  } else {
    dprintf(2, "silo-stage: %s\n", msg);
  }
  _exit(EXIT_STAGE);
}

static void write_file(const char *path, const char *text, int optional) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    if (optional && errno == ENOENT) return;
    fail("open %s: %s", path, strerror(errno));
  }
  ssize_t n = write(fd, text, strlen(text));
  if (n != (ssize_t)strlen(text)) fail("write %s: %s", path, strerror(errno));
  close(fd);
}

static int mount_overlay(const char *lowers, const char *upper, const char *work, const char *target) {
  size_t len = strlen(lowers) + strlen(upper) + strlen(work) + 64;
  char *opts = malloc(len);
  if (!opts) fail("out of memory");
  snprintf(opts, len, "userxattr,lowerdir=%s,upperdir=%s,workdir=%s", lowers, upper, work);
  int r = mount("silo", target, "overlay", 0, opts);
  int saved = errno;
  free(opts);
  errno = saved;
  return r;
}

static void loopback_up(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket: %s", strerror(errno));
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) fail("SIOCGIFFLAGS lo: %s", strerror(errno));
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) fail("SIOCSIFFLAGS lo: %s", strerror(errno));
  close(fd);
}

/* "127.0.0.1:3128" -> a listening socket in the current network namespace. */
static int listen_on(const char *spec) {
  char ip[64];
  const char *colon = strrchr(spec, ':');
  if (!colon || (size_t)(colon - spec) >= sizeof ip) fail("bad listen address %s", spec);
  memcpy(ip, spec, colon - spec);
  ip[colon - spec] = 0;
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 1 || port > 65535) fail("bad listen port in %s", spec);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)port);
  if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) fail("bad listen address %s", spec);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket: %s", strerror(errno));
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) fail("cannot listen on %s inside the sandbox: %s", spec, strerror(errno));
  if (listen(fd, SOMAXCONN) < 0) fail("listen %s: %s", spec, strerror(errno));
  return fd;
}

static void send_fds(const int *fds, int n) {
  char byte = 'L';
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_LISTEN)];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * n);
  memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
  ssize_t r;
  do r = sendmsg(FD_SEND, &msg, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  if (r != 1) fail("sending the listening sockets to silo: %s", strerror(errno));
}

int main(int argc, char **argv) {
  if (argc < 10) {
    dprintf(2, "usage: silo-stage PARENT RUNDIR LOWERDIRS UPPER WORK FALLBACK NET [IP:PORT ...] -- BWRAP ARGS...\n");
    return EXIT_STAGE;
  }
  pid_t parent = (pid_t)atol(argv[1]);
  rundir = argv[2];
  const char *lowers = argv[3], *upper = argv[4], *work = argv[5];
  int fallback = strcmp(argv[6], "1") == 0;
  int net = strcmp(argv[7], "1") == 0;
  int i = 8;
  const char *listen_specs[MAX_LISTEN];
  int nlisten = 0;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    if (nlisten == MAX_LISTEN) fail("too many listen addresses");
    listen_specs[nlisten++] = argv[i];
  }
  if (i + 1 >= argc) fail("no bwrap command after --");
  char **cmd = &argv[i + 1];

  uid_t uid = getuid();
  gid_t gid = getgid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS | (net ? CLONE_NEWNET : 0)) < 0)
    fail("cannot create the sandbox's namespaces (unshare: %s); unprivileged user namespaces may be disabled", strerror(errno));
  /* New credentials clear the parent-death signal: set it now, and stop if silo is already gone. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) fail("prctl: %s", strerror(errno));
  if (getppid() != parent) _exit(EXIT_STAGE);

  char map[64];
  write_file("/proc/self/setgroups", "deny", 1);
  snprintf(map, sizeof map, "0 %u 1\n", (unsigned)uid);
  write_file("/proc/self/uid_map", map, 0);
  snprintf(map, sizeof map, "0 %u 1\n", (unsigned)gid);
  write_file("/proc/self/gid_map", map, 0);
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) fail("making mounts private: %s", strerror(errno));

  char root[4096];
  snprintf(root, sizeof root, "%s/root", rundir);
  if (mount_overlay(lowers, upper, work, root) < 0) {
    int first = errno;
    if (!fallback) fail("mount overlay: %s", strerror(first));
    char t[4096], u[4096], w[4096];
    snprintf(t, sizeof t, "%s/t", rundir);
    snprintf(u, sizeof u, "%s/t/u", rundir);
    snprintf(w, sizeof w, "%s/t/w", rundir);
    if (mkdir(t, 0700) < 0 || mount("silo", t, "tmpfs", 0, "mode=0700") < 0 || mkdir(u, 0755) < 0 || mkdir(w, 0755) < 0)
      fail("mount overlay: %s; tmpfs fallback: %s", strerror(first), strerror(errno));
    if (mount_overlay(lowers, u, w, root) < 0) fail("mount overlay: %s; on a tmpfs upper: %s", strerror(first), strerror(errno));
  }

  if (net) {
    loopback_up();
    int fds[MAX_LISTEN];
    for (int k = 0; k < nlisten; k++) fds[k] = listen_on(listen_specs[k]);
    if (nlisten > 0) send_fds(fds, nlisten);
    for (int k = 0; k < nlisten; k++) close(fds[k]);
  }
  if (fcntl(FD_SEND, F_GETFD) >= 0) close(FD_SEND);

  char status[4096];
  snprintf(status, sizeof status, "%s/status", rundir);
  int sfd = open(status, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (sfd < 0) fail("open %s: %s", status, strerror(errno));
  if (dup2(sfd, FD_STATUS) < 0) fail("dup2: %s", strerror(errno));
  close(sfd);
  execv(cmd[0], cmd);
  fail("exec %s: %s", cmd[0], strerror(errno));
  return EXIT_STAGE;
}
