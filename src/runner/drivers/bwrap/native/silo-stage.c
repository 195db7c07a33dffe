/*
 * silo-stage: the set-up stage of a bwrap sandbox, as one small static program instead of
 * `unshare` + `sh` + `mount` (and, with network relays, a second silo process). It is compiled by
 * scripts/build.ts, embedded in the silo executable and written to SILO_HOME/libexec on first use;
 * argv.ts (buildStageMessage) is the only place that builds what it reads.
 *
 *   silo-stage --control PARENT NET      fd 3: the control socket, fd 4: the reaper's socket
 *
 * silo starts it as soon as it knows a sandbox will run (before the image and the network are ready), so
 * its namespaces are made while silo finishes preparing:
 *
 *   0. a reaper child, in the host's namespaces: it reads `+ DIR` (remember) and `- DIR` (remove now)
 *      lines on fd 4 and, once PARENT's process has ended (however it ended, whatever program it ran by
 *      then: silo may have handed over to its waiter), removes every DIR it was told of. It ignores the
 *      terminal's and the usual termination signals;
 *   1. a new user namespace (root inside, the invoking user outside), a mount namespace and, when NET is
 *      1, a network namespace with loopback up;
 *   2. then it reads one message on fd 3 (EOF instead: silo gave up; exit 0). The message is
 *      "SILO-STAGE 1\n<length>\n" and <length> bytes of NUL-terminated fields:
 *        RUNDIR LOWERDIRS UPPER WORK FALLBACK GITLOWER GITDIR NRELAYS RELAY... NFDS (LEN BYTES)... ARGC ARG... TTY NPROC
 *      BYTES are raw (LEN of them, no terminator); the NFDS blobs become bwrap's fds 3, 4, ... (memfds);
 *      ARG... is the bwrap command line; TTY 1: the run has a terminal (see "the terminal", below);
 *      NPROC the cap on its processes (RLIMIT_NPROC; 0: none);
 *   3. the overlay, in RUNDIR (relative paths are relative to it): LOWERDIRS (top first, ':'-joined)
 *      read-only under UPPER, mounted on RUNDIR/root;
 *      when FALLBACK is 1 and UPPER's filesystem cannot hold an overlay upper, a tmpfs upper instead;
 *      unless GITLOWER is empty, the project's .git (GITLOWER) under GITDIR/upper, on GITDIR/mnt (no
 *      fallback: silo applies that upper after the sandbox, so it must be on disk);
 *   4. with NET, the relays, the sandbox's only ways out of its network namespace. Each RELAY is one of
 *        IP:PORT>SOCKET         listen on IP:PORT in the namespace; each connection goes to the host's
 *                               Unix socket SOCKET (the egress proxy)
 *        IP:PORT>SOCKET>HPORT   the same, with HPORT as a 2-byte header first (hostAccess: which port)
 *        /PATH>PORT,PORT...     listen on the Unix socket /PATH; each connection starts with a 2-byte
 *                               port header, and goes to that port on the namespace's loopback (port
 *                               forwards from the host), for the listed ports only
 *      All listen before bwrap starts, so the command never sees a relay missing. A connection whose
 *      host socket is not there yet sends SIGURG to PARENT (silo starts the egress proxy on first use)
 *      and waits for it. This process then stays as the relays' server (a child per connection) and
 *      starts bwrap as its child, reaps them all, and exits as bwrap does (its code, or its signal). It is
 *      outside the sandbox's pid namespace and filesystem view, and dies with silo (parent-death
 *      signal); bwrap dies with it;
 *   5. with TTY 1 and a terminal on one of fds 0-2, a pseudo-terminal (as with relays, this process stays
 *      as bwrap's parent and relays the terminal);
 *   6. exec bwrap (in that child, with relays or a terminal), with its JSON status on fd 8 (RUNDIR/status).
 *
 *   silo-stage --relays-only RELAY...   only the relays, here, until killed (the throughput benchmark).
 *   silo-stage --wait ...                what silo becomes once its sandbox runs (wait_mode, below).
 *   silo-stage --ctty COMMAND...         inside the sandbox: take the terminal, exec COMMAND (ctty_mode).
 *
 * Failures: the reason goes to RUNDIR/err (stderr before the message names RUNDIR) and the exit code is
 * 125 (silo reports it). Nothing here is a sandbox by itself; bwrap is, inside what this sets up.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <limits.h>
#include <sys/syscall.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <termios.h>
#include <unistd.h>

#define EXIT_STAGE 125
#define FD_STATUS 8
#define MAX_RELAYS 64
#define PIPE_BYTES (1 << 20)

static const char *rundir = NULL;
static pid_t silo_pid = 0;

static void terminal_restore(void);

static void fail(const char *fmt, ...) {
  terminal_restore();
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char path[4096];
  int fd = -1;
  if (rundir) {
    snprintf(path, sizeof path, "%s/err", rundir);
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  }
  if (fd >= 0) {
    dprintf(fd, "%s\n", msg);
    close(fd);
  } else {
    dprintf(2, "silo-stage: %s\n", msg);
  }
  _exit(EXIT_STAGE);
}

/*
 * bwrap's --dev binds the host's own device nodes (null, zero, full, random, urandom, tty). Run as root,
 * the sandbox's uid 0 owns them: a chmod or utime inside would change them on the host (a /dev/null of
 * mode 0600 breaks every other user). Bound read-only here, in the stage's mount namespace, before bwrap
 * binds them: a device still reads and writes on a read-only mount, but its inode cannot be changed
 * (EROFS). bwrap's own read-only bind would add nodev and make them unusable. The flags the host mount
 * has (nosuid, atime) are kept: a user namespace may not clear them.
 */
static void protect_host_devices(void) {
  static const char *const nodes[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"};
  for (size_t k = 0; k < sizeof nodes / sizeof *nodes; k++) {
    struct statvfs sv;
    if (statvfs(nodes[k], &sv) < 0) continue; /* not on this host: bwrap says so if it needs it */
    unsigned long fl = MS_REMOUNT | MS_BIND | MS_RDONLY;
    if (sv.f_flag & ST_NOSUID) fl |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV) fl |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) fl |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME) fl |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) fl |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) fl |= MS_RELATIME;
    if (mount(nodes[k], nodes[k], NULL, MS_BIND, NULL) < 0 || mount(NULL, nodes[k], NULL, fl, NULL) < 0)
      fail("binding %s read-only: %s", nodes[k], strerror(errno));
  }
}

/*
 * Per-user kernel counters a sandbox could use up for the invoking user on the host: inotify instances and
 * watches used inside are charged to the user's own count too (ucounts are checked up the chain of user
 * namespaces), so a sandbox holding them all leaves the user's editors and watchers with EMFILE. The
 * stage's user namespace gets half of each host limit (read before the namespace: inside it the value
 * shows its own, unlimited, setting); nothing below it can take more.
 */
#define N_USER_LIMITS 2
static int write_file(const char *path, const char *text, int optional);
static const char *const user_limits[N_USER_LIMITS] = {"/proc/sys/user/max_inotify_instances", "/proc/sys/user/max_inotify_watches"};

static void read_user_limits(long *out) {
  for (int k = 0; k < N_USER_LIMITS; k++) {
    out[k] = -1;
    int fd = open(user_limits[k], O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[32];
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r > 0) buf[r] = 0, out[k] = atol(buf);
  }
}

static void halve_user_limits(const long *host) {
  for (int k = 0; k < N_USER_LIMITS; k++) {
    if (host[k] <= 1) continue;
    char v[32];
    snprintf(v, sizeof v, "%ld\n", host[k] / 2);
    write_file(user_limits[k], v, 1); /* best effort: an older kernel may not namespace it */
  }
}

/* The sandbox is the OOM killer's first choice: its tmpfs mounts (/tmp, /dev/shm, the writable layer) are
   charged to no process, and killing the sandbox is what frees them. Inherited by bwrap and the command. */
static void prefer_for_oom(void) { write_file("/proc/self/oom_score_adj", "1000\n", 1); }

/* 0, or -1 with errno (a missing optional file is fine). */
static int write_file(const char *path, const char *text, int optional) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return optional && errno == ENOENT ? 0 : -1;
  ssize_t n = write(fd, text, strlen(text));
  int saved = errno;
  close(fd);
  if (n == (ssize_t)strlen(text)) return 0;
  errno = n < 0 ? saved : EIO;
  return -1;
}

/*
 * An upper that is thrown away needs no durability: `volatile` (Linux 5.10+) spares the unmount at the
 * sandbox's end a sync of the whole filesystem holding it (a journal commit on the caller's critical path).
 * A build capture (FALLBACK 0) keeps it. Kernels without the option get the mount without it.
 */
static int mount_overlay(const char *lowers, const char *upper, const char *work, const char *target, int ephemeral) {
  size_t len = strlen(lowers) + strlen(upper) + strlen(work) + 64;
  char *opts = malloc(len);
  if (!opts) fail("out of memory");
  int r = -1;
  if (ephemeral) {
    snprintf(opts, len, "userxattr,volatile,lowerdir=%s,upperdir=%s,workdir=%s", lowers, upper, work);
    r = mount("silo", target, "overlay", 0, opts);
  }
  if (r < 0) {
    snprintf(opts, len, "userxattr,lowerdir=%s,upperdir=%s,workdir=%s", lowers, upper, work);
    r = mount("silo", target, "overlay", 0, opts);
  }
  int saved = errno;
  free(opts);
  errno = saved;
  return r;
}

/*
 * A thrown-away upper on a tmpfs of ROOTFS bytes, `t` in the run dir (THREATS.md invariant 8: the writable
 * layer's cap; a write past it fails with ENOSPC inside, and the whole tmpfs goes with the mount namespace).
 * Relative names (t/u, t/w), as the mountinfo inside shows them. An overlay upper in a user namespace keeps
 * its metadata in user.* xattrs, which tmpfs holds since Linux 6.6; on an older kernel the upper stays on
 * disk, in the run dir, uncapped (limits.ts says so).
 */
static void mount_upper_tmpfs(const char *lowers, const char *upper, const char *work, const char *target, long long bytes) {
  char opts[64];
  snprintf(opts, sizeof opts, "size=%lld,mode=0700", bytes);
  if (mkdir("t", 0700) < 0 || mount("silo", "t", "tmpfs", 0, opts) < 0 || mkdir("t/u", 0755) < 0 || mkdir("t/w", 0755) < 0)
    fail("cannot mount the writable layer's tmpfs: %s", strerror(errno));
  if (setxattr("t/u", "user.silo", "1", 1, 0) < 0) {
    if (errno != ENOTSUP && errno != EOPNOTSUPP) fail("the writable layer's tmpfs: %s", strerror(errno));
    umount2("t", MNT_DETACH);
    if ((mkdir(upper, 0755) < 0 && errno != EEXIST) || (mkdir(work, 0755) < 0 && errno != EEXIST)) fail("mkdir %s: %s", upper, strerror(errno));
    if (mount_overlay(lowers, upper, work, target, 1) < 0) fail("mount overlay: %s", strerror(errno));
    return;
  }
  removexattr("t/u", "user.silo");
  if (mount_overlay(lowers, "t/u", "t/w", target, 1) < 0) fail("mount overlay on the writable layer's tmpfs: %s", strerror(errno));
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

enum kind { TO_UNIX, TO_LOOPBACK };

struct relay {
  enum kind kind;
  int fd;                /* the listening socket */
  const char *target;    /* TO_UNIX: the host-side socket */
  int header;            /* TO_UNIX: port header to send first, or -1 */
  int ports[MAX_RELAYS]; /* TO_LOOPBACK: the ports a connection may ask for */
  int nports;
};

static int parse_port(const char *s) {
  char *end;
  long p = strtol(s, &end, 10);
  if (*end || p < 1 || p > 65535) fail("bad port %s", s);
  return (int)p;
}

static void fill_unix(struct sockaddr_un *sa, const char *path) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa->sun_path) fail("socket path too long: %s", path);
  strcpy(sa->sun_path, path);
}

/* Parse one RELAY argument and listen on it (in the current, new, network namespace). */
static void open_relay(char *spec, struct relay *r) {
  char *gt = strchr(spec, '>');
  if (!gt) fail("bad relay %s", spec);
  *gt = 0;
  char *rest = gt + 1;
  if (spec[0] == '/') {
    r->kind = TO_LOOPBACK;
    for (char *tok = strtok(rest, ","); tok; tok = strtok(NULL, ",")) {
      if (r->nports == MAX_RELAYS) fail("too many ports");
      r->ports[r->nports++] = parse_port(tok);
    }
    struct sockaddr_un sa;
    fill_unix(&sa, spec);
    unlink(spec);
    r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->fd < 0 || bind(r->fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(r->fd, SOMAXCONN) < 0)
      fail("cannot listen on %s: %s", spec, strerror(errno));
    return;
  }
  r->kind = TO_UNIX;
  r->target = rest;
  r->header = -1;
  char *gt2 = strchr(rest, '>');
  if (gt2) {
    *gt2 = 0;
    r->header = parse_port(gt2 + 1);
  }
  char *colon = strrchr(spec, ':');
  if (!colon) fail("bad relay address %s", spec);
  *colon = 0;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)parse_port(colon + 1));
  if (inet_pton(AF_INET, spec, &sa.sin_addr) != 1) fail("bad relay address %s", spec);
  r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (r->fd < 0) fail("socket: %s", strerror(errno));
  if (bind(r->fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(r->fd, SOMAXCONN) < 0)
    fail("cannot listen on %s:%s inside the sandbox: %s", spec, colon + 1, strerror(errno));
}

static int write_all(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_full(int fd, unsigned char *buf, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, buf, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    buf += r;
    n -= (size_t)r;
  }
  return 0;
}

/*
 * A tunnel the egress proxy gives up on (its upstream reset, or failed mid-transfer) must reach the client as
 * an error, never as the clean end of a short download. The proxy says so with one byte of out-of-band
 * data (MSG_OOB) on the Unix socket, then closes it; this relay answers with a TCP reset. The mark is read
 * with poll(2) (POLLPRI) before every read of that socket: a read stops at the mark when it has bytes to
 * return, but one that starts at it drops it and goes on to the end, which would look clean. A peer that
 * never sends the mark (the hostAccess bridge, a port forward) sees no difference.
 */
static int cut_marked(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN | POLLPRI};
  while (poll(&p, 1, -1) < 0 && errno == EINTR) {}
  return (p.revents & POLLPRI) != 0;
}

/*
 * Reset the client's TCP socket: SO_LINGER 0 and connect(AF_UNSPEC) send the RST at once, whoever else
 * holds the socket. When the other direction's process is blocked on it the kernel refuses that (EBUSY);
 * shutdown(SHUT_RD) then wakes that process without a FIN, and the reset goes with the last close.
 */
static void reset_client(int fd) {
  struct linger l = {.l_onoff = 1, .l_linger = 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  struct sockaddr sa = {.sa_family = AF_UNSPEC};
  if (connect(fd, &sa, sizeof sa) < 0) shutdown(fd, SHUT_RD);
}

/*
 * One direction with splice(2) through a pipe: the bytes never enter this process. When `from` ends, the
 * FIN is passed on (half-close). With `marked`, `from` is the proxy's Unix socket and its cut mark resets
 * `to` (the client). On an error reading from `from` or writing to `to`, both are shut down. `back`: this
 * is the client-to-host direction, which never ends the client's side itself (a FIN from here could reach
 * the client before the other direction's reset); it only stops reading it.
 */
static void splice_one_way(int from, int to, int marked, int back) {
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) < 0) goto fail;
  fcntl(pfd[1], F_SETPIPE_SZ, PIPE_BYTES); /* best effort: a smaller pipe only means more system calls */
  for (;;) {
    if (marked && cut_marked(from)) {
      reset_client(to);
      shutdown(from, SHUT_RDWR);
      return;
    }
    ssize_t n = splice(from, NULL, pfd[1], NULL, PIPE_BYTES, SPLICE_F_MOVE);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) goto fail;
    if (n == 0) {
      shutdown(to, SHUT_WR);
      return;
    }
    while (n > 0) {
      ssize_t w = splice(pfd[0], NULL, to, NULL, (size_t)n, SPLICE_F_MOVE);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) goto fail;
      n -= w;
    }
  }
fail:
  if (back) {
    shutdown(from, SHUT_RD);
    shutdown(to, SHUT_WR);
    return;
  }
  shutdown(from, SHUT_RDWR);
  shutdown(to, SHUT_RDWR);
}

/*
 * Both directions of one connection, the reverse one (host to client) in a child of its own, each a
 * blocking splice loop. `marked`: the host side is the egress proxy, which may send a cut mark.
 */
static void pump(int client, int host, int marked) {
  pid_t self = getpid();
  pid_t child = fork();
  if (child == 0) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != self) _exit(0);
    splice_one_way(host, client, marked, 0);
    _exit(0);
  }
  if (child < 0) return;
  splice_one_way(client, host, 0, 1);
  while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {}
}

/*
 * silo starts the egress proxy on the first connection that needs it: until its socket exists and
 * listens, wait a little (up to CONNECT_WAIT_MS in all), then give up, so the client sees its connection
 * close (fail closed).
 */
#define CONNECT_WAIT_MS 5000

static int connect_unix(const char *path) {
  struct sockaddr_un sa;
  fill_unix(&sa, path);
  long waited_us = 0, step_us = 500;
  int asked = 0;
  for (;;) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
    int e = errno;
    close(fd);
    if ((e != ENOENT && e != ECONNREFUSED) || waited_us >= CONNECT_WAIT_MS * 1000L) return -1;
    /* Not listening yet: silo starts its host side (the egress proxy) when asked; asked again now and
       then, in case silo was between programs (handing over to its waiter) when the first one came. */
    if (silo_pid > 0 && asked % 16 == 0) kill(silo_pid, SIGURG);
    asked++;
    usleep((useconds_t)step_us);
    waited_us += step_us;
    if (step_us < 20000) step_us *= 2;
  }
}

/* Dev servers often listen on localhost only, which may be ::1. */
static int connect_loopback(int port) {
  struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&v4, sizeof v4) == 0) return fd;
  if (fd >= 0) close(fd);
  struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons((unsigned short)port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&v6, sizeof v6) == 0) return fd;
  if (fd >= 0) close(fd);
  return -1;
}

static void serve_connection(const struct relay *r, int c) {
  int peer = -1;
  if (r->kind == TO_UNIX) {
    peer = connect_unix(r->target);
    if (peer < 0) return; /* the host side is gone: nothing else leads out */
    if (r->header >= 0) {
      char h[2] = {(char)(r->header >> 8), (char)(r->header & 0xff)};
      if (write_all(peer, h, 2) < 0) return;
    }
  } else {
    unsigned char h[2];
    if (read_full(c, h, 2) < 0) return;
    int port = (h[0] << 8) | h[1], ok = 0;
    for (int k = 0; k < r->nports; k++) ok |= r->ports[k] == port;
    if (!ok) return;
    peer = connect_loopback(port);
    if (peer < 0) return;
  }
  pump(c, peer, r->kind == TO_UNIX);
}

static int sigchld_pipe[2] = {-1, -1};

static void on_sigchld(int sig) {
  (void)sig;
  int saved = errno;
  if (write(sigchld_pipe[1], "c", 1) < 0) { /* full: a wake-up is pending anyway */ }
  errno = saved;
}

/* bwrap ended: end the same way, so silo sees its exit code or signal. */
static void exit_like(int status) {
  if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    kill(getpid(), sig);
  }
  _exit(EXIT_STAGE);
}

/* ---- the terminal: a pseudo-terminal of the sandbox's own (runs with a TTY) ---- */

/*
 * The sandbox always runs in a session of its own (bwrap --new-session), so neither kill(0, ...) nor its
 * terminal reaches silo's processes. With a terminal it gets a pseudo-terminal instead of silo's: the slave
 * stands in for exactly those of fds 0-2 that are terminals (the others pass through untouched), and this
 * process, outside the sandbox's session, copies between the real terminal (raw while the sandbox runs)
 * and the master, passes window-size changes on (SIGWINCH reaches it as a member of silo's process group),
 * and makes Ctrl-Z stop silo with its job. The command takes the slave as its controlling terminal through
 * this program (`--ctty`, exec'd from fd FD_SELF: the stage's own executable, which is nowhere in the
 * sandbox's filesystem), so that Ctrl-C and job control work inside.
 *
 * Ctrl-Z: the command leads a session whose parent (bwrap's pid 1) is outside it, so the kernel discards the
 * terminal's SIGTSTP for it (an orphaned process group). When the suspend character comes while the
 * foreground job is the session leader's (no shell inside runs a job of its own), this process stops it
 * (SIGSTOP), gives the terminal back, and stops silo's process group as the terminal would have; continued,
 * it takes the terminal again and continues the job. A job of a shell inside gets its SIGTSTP and its own
 * shell's job control.
 */
#define FD_SELF 9

static struct {
  int master;          /* -1: no terminal */
  int slave;
  int is_tty[3];       /* which of fds 0-2 the slave replaces */
  int in, out, ctl;    /* read typed input from, write output to, termios and window size of: real fds */
  int raw, hup;        /* the real terminal is raw; the master has hung up (no slave left) */
  struct termios saved;
  char pending[4096];  /* typed input not yet taken by the master */
  size_t npending, off;
} term = {.master = -1, .slave = -1, .in = -1, .out = -1, .ctl = -1};

static void terminal_restore(void) {
  if (term.raw && tcsetattr(term.ctl, TCSADRAIN, &term.saved) == 0) term.raw = 0;
}

static void terminal_raw(void) {
  if (term.in < 0 || term.raw) return;
  struct termios t = term.saved;
  cfmakeraw(&t);
  if (tcsetattr(term.ctl, TCSADRAIN, &t) == 0) term.raw = 1;
}

static void terminal_resize(void) {
  struct winsize ws;
  if (ioctl(term.ctl, TIOCGWINSZ, &ws) == 0) ioctl(term.master, TIOCSWINSZ, &ws);
}

/* A pseudo-terminal when one of fds 0-2 is a terminal: 1, else 0. The slave starts with the real one's settings. */
static int terminal_open(void) {
  int any = 0;
  for (int fd = 0; fd < 3; fd++) any |= term.is_tty[fd] = isatty(fd);
  if (!any) return 0;
  term.ctl = term.is_tty[0] ? 0 : term.is_tty[1] ? 1 : 2;
  term.in = term.is_tty[0] ? 0 : -1;
  /* Output goes where the command's terminal output would have: stdout, else stderr, else (only stdin is a
     terminal: the echo of what is typed) the terminal behind stdin. */
  term.out = term.is_tty[1] ? 1 : term.is_tty[2] ? 2 : 0;
  term.master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (term.master < 0 || unlockpt(term.master) < 0) fail("cannot open a pseudo-terminal: %s", strerror(errno));
  term.slave = ioctl(term.master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (term.slave < 0) fail("cannot open the pseudo-terminal's slave: %s", strerror(errno));
  if (tcgetattr(term.ctl, &term.saved) == 0) tcsetattr(term.slave, TCSANOW, &term.saved);
  else term.in = -1; /* not a terminal after all: nothing to make raw */
  terminal_resize();
  fcntl(term.master, F_SETFL, O_NONBLOCK);
  terminal_raw();
  return 1;
}

/* In bwrap's child: the slave on the descriptors that were terminals; the command line through `--ctty`. */
static char **terminal_child(char **cmd) {
  for (int fd = 0; fd < 3; fd++)
    if (term.is_tty[fd] && dup2(term.slave, fd) < 0) fail("dup2: %s", strerror(errno));
  close(term.slave);
  close(term.master);
  int self = open("/proc/self/exe", O_RDONLY);
  if (self < 0 || (self != FD_SELF && dup2(self, FD_SELF) < 0)) fail("cannot open the stage's executable: %s", strerror(errno));
  if (self != FD_SELF) close(self);
  int n = 0, dd = -1;
  while (cmd[n]) {
    if (dd < 0 && strcmp(cmd[n], "--") == 0) dd = n;
    n++;
  }
  if (dd < 0) fail("bad bwrap command line");
  char **out = calloc((size_t)n + 3, sizeof *out);
  if (!out) fail("out of memory");
  static char self_path[32], flag[] = "--ctty";
  snprintf(self_path, sizeof self_path, "/proc/self/fd/%d", FD_SELF);
  int k = 0;
  for (int i = 0; i <= dd; i++) out[k++] = cmd[i];
  out[k++] = self_path;
  out[k++] = flag;
  for (int i = dd + 1; i < n; i++) out[k++] = cmd[i];
  return out;
}

/*
 * silo-stage --ctty COMMAND...: inside the sandbox, lead a session of its own (bwrap's --new-session made
 * one for its pid 1, this process in it) with the terminal as its controlling one, then run COMMAND.
 */
static void ctty_mode(char **cmd) {
  setsid();
  for (int fd = 0; fd < 3; fd++)
    if (isatty(fd)) {
      ioctl(fd, TIOCSCTTY, 0);
      break;
    }
  close(FD_SELF);
  execvp(cmd[0], cmd);
  int e = errno;
  dprintf(2, "silo: execvp %s: %s\n", cmd[0], strerror(e));
  _exit(e == ENOENT ? 127 : 126);
}

/* Ctrl-Z for the whole job: see above. Returns once silo is continued (or at once, if nothing stops). */
static void terminal_suspend(void) {
  pid_t fg = tcgetpgrp(term.master), leader = tcgetsid(term.master);
  if (fg <= 0 || fg != leader) return;
  kill(-fg, SIGSTOP);
  terminal_restore();
  kill(0, SIGTSTP); /* silo's process group, this process with it, as the terminal would have */
  terminal_raw();   /* continued in the background, this stops the group again (SIGTTOU) until fg */
  terminal_resize();
  kill(-fg, SIGCONT);
}

/* Typed input to the master, up to and including a suspend character (then the job stops). */
static void terminal_flush_input(void) {
  while (term.off < term.npending) {
    size_t end = term.npending;
    int suspend = 0;
    struct termios t;
    if (tcgetattr(term.master, &t) == 0 && (t.c_lflag & ISIG) && t.c_cc[VSUSP] != _POSIX_VDISABLE) {
      char *z = memchr(term.pending + term.off, t.c_cc[VSUSP], end - term.off);
      if (z) end = (size_t)(z - term.pending) + 1, suspend = 1;
    }
    ssize_t w = write(term.master, term.pending + term.off, end - term.off);
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (w <= 0) break; /* the slave is gone */
    term.off += (size_t)w;
    if (suspend && term.off == end) terminal_suspend();
  }
  term.npending = term.off = 0;
}

/* Copy what the sandbox wrote; 0 once there is nothing more for now. */
static int terminal_copy_output(void) {
  char buf[65536];
  ssize_t r = read(term.master, buf, sizeof buf);
  if (r > 0) {
    if (term.out >= 0 && write_all(term.out, buf, (size_t)r) < 0) term.out = -1;
    return 1;
  }
  if (r == 0 || (errno != EAGAIN && errno != EINTR)) term.hup = 1; /* EIO: every slave is closed */
  return 0;
}

/* The terminal's entries for poll(2), at most 2. */
static int terminal_pollfds(struct pollfd *p) {
  int k = 0;
  if (term.master < 0 || term.hup) return 0;
  p[k++] = (struct pollfd){.fd = term.master, .events = POLLIN | (term.npending ? POLLOUT : 0)};
  if (term.in >= 0 && !term.npending) p[k++] = (struct pollfd){.fd = term.in, .events = POLLIN};
  return k;
}

static void terminal_serve(const struct pollfd *p, int n) {
  for (int k = 0; k < n; k++) {
    if (!p[k].revents) continue;
    if (p[k].fd == term.master) {
      if (p[k].revents & (POLLIN | POLLHUP | POLLERR)) terminal_copy_output();
      if (p[k].revents & POLLOUT) terminal_flush_input();
    } else {
      ssize_t r = read(term.in, term.pending, sizeof term.pending);
      if (r > 0) {
        term.npending = (size_t)r;
        term.off = 0;
        terminal_flush_input();
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        term.in = -1; /* the real terminal is gone */
      }
    }
  }
}

static volatile sig_atomic_t winched;

static void on_winch(int sig) {
  (void)sig;
  winched = 1;
  int saved = errno;
  if (write(sigchld_pipe[1], "w", 1) < 0) { /* a wake-up is pending anyway */ }
  errno = saved;
}

/* The relay process's signals with a terminal: it ends as bwrap ends, never of a termination signal. */
static void terminal_signals(void) {
  signal(SIGTERM, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_winch;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGWINCH, &sa, NULL);
}

/* bwrap ended: what the sandbox wrote last, then the terminal as it was. */
static void terminal_end(void) {
  if (term.master < 0) return;
  while (!term.hup && terminal_copy_output()) {}
  terminal_restore();
}

/*
 * The relay process: bwrap's parent. It accepts on every relay (a child per connection), reaps its
 * children, and ends as bwrap ends. It ignores the terminal's signals (a Ctrl-C in `silo shell` is the
 * command's business; silo forwards what it must to the command itself). Never returns.
 */
/*
 * Each connection is a host process (a child here), so the sandbox could make as many as it likes: at
 * MAX_CONNECTIONS at once the listeners are not polled (further connections wait in their backlog, then
 * are refused) until one ends. SILO_STAGE_MAX_CONNECTIONS (this program's environment, which only silo
 * sets: from its own, never from config or the sandbox) may lower it, for the tests; never raise it.
 */
#define MAX_CONNECTIONS 256
static int max_connections = MAX_CONNECTIONS;
static void bound_connections(struct pollfd *p, int n, int live) {
  for (int k = 0; k < n; k++) p[k].events = live < max_connections ? POLLIN : 0;
}

static void lower_max_connections(void) {
  const char *v = getenv("SILO_STAGE_MAX_CONNECTIONS");
  long n = v ? atol(v) : 0;
  if (n >= 1 && n < MAX_CONNECTIONS) max_connections = (int)n;
}

static void serve_relays(struct relay *relays, int n, pid_t bwrap) {
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  /* A SIGTERM to silo's whole job (`timeout` sends one) is the command's, passed on by silo: bwrap's parent
     must not die of it first. Killed, silo takes this process down (its parent-death signal). */
  if (bwrap > 0) signal(SIGTERM, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK) < 0) fail("pipe: %s", strerror(errno));
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  if (term.master >= 0) terminal_signals();
  struct pollfd p[MAX_RELAYS + 3];
  for (int k = 0; k < n; k++) p[k] = (struct pollfd){.fd = relays[k].fd, .events = POLLIN};
  p[n] = (struct pollfd){.fd = sigchld_pipe[0], .events = POLLIN};
  pid_t self = getpid();
  int live = 0; /* connections being served (children) */
  for (;;) {
    /* Reap first: bwrap may have ended before the handler was in place. */
    int status;
    pid_t dead;
    while ((dead = waitpid(-1, &status, WNOHANG)) > 0)
      if (dead == bwrap) {
        terminal_end();
        exit_like(status);
      } else live--;
    bound_connections(p, n, live);
    if (winched) winched = 0, terminal_resize();
    int nt = terminal_pollfds(&p[n + 1]);
    if (poll(p, (nfds_t)(n + 1 + nt), -1) < 0) {
      if (errno == EINTR) continue;
      fail("poll: %s", strerror(errno));
    }
    if (p[n].revents & POLLIN) {
      char buf[64];
      while (read(sigchld_pipe[0], buf, sizeof buf) > 0) {}
    }
    terminal_serve(&p[n + 1], nt);
    for (int k = 0; k < n; k++) {
      if (!(p[k].revents & POLLIN)) continue;
      int c = accept4(relays[k].fd, NULL, NULL, SOCK_CLOEXEC);
      if (c < 0) continue;
      pid_t child = fork();
      if (child == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != self) _exit(0);
        signal(SIGCHLD, SIG_DFL);
        for (int j = 0; j < n; j++) close(relays[j].fd);
        if (term.master >= 0) close(term.master);
        serve_connection(&relays[k], c);
        _exit(0);
      }
      if (child > 0) live++;
      close(c);
    }
  }
}

/* bwrap's descriptors 3, 4, ...: the message's blobs, each in a memfd read from its start. */
static void place_fds(const unsigned char **blobs, const size_t *lens, int n) {
  int tmp[16];
  if (n > 16) fail("too many descriptors for bwrap");
  for (int k = 0; k < n; k++) {
    int fd = memfd_create("silo-stage", MFD_CLOEXEC);
    if (fd < 0) fail("memfd_create: %s", strerror(errno));
    if (write_all(fd, (const char *)blobs[k], lens[k]) < 0 || lseek(fd, 0, SEEK_SET) < 0) fail("memfd: %s", strerror(errno));
    tmp[k] = fcntl(fd, F_DUPFD_CLOEXEC, 100);
    if (tmp[k] < 0) fail("fcntl: %s", strerror(errno));
    close(fd);
  }
  for (int k = 0; k < n; k++) {
    if (dup2(tmp[k], 3 + k) < 0) fail("dup2: %s", strerror(errno)); /* dup2 clears close-on-exec */
    close(tmp[k]);
  }
}

/*
 * The sandbox's cap on processes and threads (RLIMIT_NPROC, both soft and hard; bwrap's own two count).
 * Since Linux 5.14 the kernel counts it per user namespace (ucounts): only the processes of this stage's
 * namespace and those below, not the user's others on the host, and a nested namespace cannot raise it.
 * The kernel does not apply it to host root (silo as root: limits.ts says so). 0: no cap.
 */
static long nproc_cap = 0;
static void limit_processes(void) {
  if (nproc_cap <= 0) return;
  struct rlimit rl = {(rlim_t)nproc_cap, (rlim_t)nproc_cap};
  if (setrlimit(RLIMIT_NPROC, &rl) < 0) fail("cannot cap the sandbox's processes (setrlimit RLIMIT_NPROC): %s", strerror(errno));
}

/*
 * bwrap leaves silo's process group (a session of its own): its monitor dies of any signal it gets, and the
 * sandbox with it (--die-with-parent), so a Ctrl-C or Ctrl-\ at silo's terminal when the sandbox has no
 * pseudo-terminal (output piped, the sh stage), or a shell's SIGHUP to its job, would end the command
 * before it could handle what silo passes on to it, and silo would exit 128+N whatever the command did.
 */
static void exec_bwrap(char **cmd) {
  setsid(); /* EPERM only for a group leader, which this never is (silo's child, or its child) */
  limit_processes();
  char status[4096];
  snprintf(status, sizeof status, "%s/status", rundir);
  int sfd = open(status, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (sfd < 0) fail("open %s: %s", status, strerror(errno));
  if (sfd == FD_STATUS) {
    if (fcntl(sfd, F_SETFD, 0) < 0) fail("fcntl: %s", strerror(errno));
  } else {
    if (dup2(sfd, FD_STATUS) < 0) fail("dup2: %s", strerror(errno));
    close(sfd);
  }
  execv(cmd[0], cmd);
  fail("exec %s: %s", cmd[0], strerror(errno));
}

/* ---- cgroups: the sandbox's processes, memory and cpu, where the host lets this user make one ---- */

/*
 * The same rules as limits.ts detectLimits (what `silo doctor` and --debug report; its tests use a fake
 * tree). cgroup v2: this process's cgroup is P (/proc/self/cgroup `0::P`, under the cgroup2 mount); a
 * cgroup with processes cannot give controllers to children (the "no internal processes" rule, root
 * excepted), so the sandbox's cgroup is P's sibling, `silo-<this pid>` in P's parent (P itself when P is
 * the root), which must be writable (its directory and cgroup.procs: a delegated systemd --user slice, or
 * root's), and only the controllers in that parent's cgroup.subtree_control count. cgroup v1, for root
 * only (v1 is never delegated): the pids hierarchy, `silo-<pid>` in this process's own cgroup there (v1 has
 * no such rule). memory and cpu are never taken from v1 (its memory controller charges differently, and
 * on such hosts it is often another manager's: here, the VM agent's).
 *
 * The stage joins it at its start, before its user namespace, while silo is still planning: moving a
 * process between cgroups waits for an RCU grace period (1.5 to 30 ms measured here), which then costs the
 * run nothing. Its reaper, forked before, stays out, and removes the directory once the stage has ended
 * (retrying while the kernel still counts the sandbox's last processes), and the empty ones of stages
 * that died with their reaper (a dead pid in the name). The limits are written once the message gives
 * them, before bwrap starts.
 */
#define MAX_CGROUPS 2
static struct cgroup {
  char dir[1100];
  int v2, pids, memory, cpu, joined;
} cgroups[MAX_CGROUPS];
static int ncgroups = 0;
static char cgroup_error[1400] = "";

static ssize_t read_small(const char *path, char *buf, size_t n) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t r = read(fd, buf, n - 1);
  close(fd);
  buf[r > 0 ? r : 0] = 0;
  return r;
}

/* Is WORD one of the words of LIST (separated by any of SEP)? */
static int has_word(const char *list, const char *word, const char *sep) {
  size_t l = strlen(word);
  for (const char *p = list; *p;) {
    size_t n = strcspn(p, sep);
    if (n == l && strncmp(p, word, l) == 0) return 1;
    p += n;
    p += strspn(p, sep);
  }
  return 0;
}

/*
 * The mount point of the hierarchy (v2: fstype cgroup2; v1: fstype cgroup with CONTROLLER among its super
 * options) and, from /proc/self/cgroup, this process's path in it, joined into OUT. 0 when there is none.
 * A mount of a sub-tree (ROOT, field 4, not "/") counts for the paths below it.
 */
static int cgroup_path(const char *info, const char *self, const char *controller, char *out, size_t n) {
  char mnt[1024] = "", root[1024] = "";
  for (const char *line = info; *line;) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char buf[8192];
    if (len < sizeof buf) {
      memcpy(buf, line, len);
      buf[len] = 0;
      char *dash = strstr(buf, " - ");
      if (dash) {
        *dash = 0;
        char fstype[64] = "", source[256] = "", opts[4096] = "", r[4096] = "", m[4096] = "";
        sscanf(dash + 3, "%63s %255s %4095s", fstype, source, opts);
        sscanf(buf, "%*s %*s %*s %4095s %4095s", r, m);
        int match = controller ? strcmp(fstype, "cgroup") == 0 && has_word(opts, controller, ",") : strcmp(fstype, "cgroup2") == 0;
        if (match && !mnt[0]) snprintf(mnt, sizeof mnt, "%.1000s", m), snprintf(root, sizeof root, "%.1000s", r);
      }
    }
    line += len + (end ? 1 : 0);
  }
  if (!mnt[0]) return 0;
  /* "ID:CONTROLLERS:PATH": v2 is "0::PATH", v1 lists its controllers (comma-separated). */
  for (const char *line = self; *line;) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char buf[4096];
    if (len < sizeof buf) {
      memcpy(buf, line, len);
      buf[len] = 0;
      char *c1 = strchr(buf, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
      if (c2) {
        *c2 = 0;
        int match = controller ? has_word(c1 + 1, controller, ",") : c1 == buf + 1 && buf[0] == '0' && c1 + 1 == c2;
        const char *rel = c2 + 1;
        size_t lr = strlen(root);
        if (match && strcmp(root, "/") != 0) rel = strncmp(rel, root, lr) == 0 && (rel[lr] == '/' || !rel[lr]) ? rel + lr : NULL;
        if (match && rel) {
          /* A path that does not fit is no cgroup we can use (never a truncated one). */
          int w = snprintf(out, n, "%s%s", mnt, strcmp(rel, "/") == 0 ? "" : rel);
          return w >= 0 && (size_t)w < n;
        }
      }
    }
    line += len + (end ? 1 : 0);
  }
  return 0;
}

/* Which cgroups the sandbox goes into (before the reaper's fork: it removes them). The files and uid are
   /proc/self/cgroup, /proc/self/mountinfo and getuid() but in the tests (--cgroups-of). */
static void cgroup_find(const char *self_file, const char *info_file, uid_t uid) {
  char self[4096], info[65536], dir[1024], path[1100], ctl[512];
  if (read_small(self_file, self, sizeof self) <= 0 || read_small(info_file, info, sizeof info) <= 0) return;
  pid_t me = getpid();
  int v2pids = 0;
  if (cgroup_path(info, self, NULL, dir, sizeof dir)) {
    /* The root cgroup (the mount point itself) may hold processes and children both. */
    char mnt[1024];
    char *slash = strrchr(dir, '/');
    int is_root = 0;
    if (cgroup_path(info, "0::/\n", NULL, mnt, sizeof mnt)) is_root = strcmp(mnt, dir) == 0;
    if (!is_root && slash && slash != dir) *slash = 0;
    snprintf(path, sizeof path, "%.1000s/cgroup.procs", dir);
    int writable = access(dir, W_OK) == 0 && access(path, W_OK) == 0;
    snprintf(path, sizeof path, "%.1000s/cgroup.subtree_control", dir);
    if (writable && read_small(path, ctl, sizeof ctl) > 0) {
      struct cgroup *c = &cgroups[ncgroups];
      memset(c, 0, sizeof *c);
      c->pids = has_word(ctl, "pids", " \n");
      c->memory = has_word(ctl, "memory", " \n");
      c->cpu = has_word(ctl, "cpu", " \n");
      c->v2 = 1;
      if ((c->pids || c->memory || c->cpu) && snprintf(c->dir, sizeof c->dir, "%.1000s/silo-%d", dir, (int)me) < (int)sizeof c->dir) {
        v2pids = c->pids;
        ncgroups++;
      }
    }
  }
  if (uid == 0 && !v2pids && cgroup_path(info, self, "pids", dir, sizeof dir) && access(dir, W_OK) == 0) {
    struct cgroup *c = &cgroups[ncgroups];
    memset(c, 0, sizeof *c); /* a v2 candidate without controllers may have been filled in */
    c->pids = 1;
    if (snprintf(c->dir, sizeof c->dir, "%.1000s/silo-%d", dir, (int)me) < (int)sizeof c->dir) ncgroups++;
  }
}

/* Make the cgroups and move this process into them (it is alone: the reaper is forked already). */
static void cgroup_join(void) {
  char path[1200], pid[32];
  snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  for (int k = 0; k < ncgroups; k++) {
    struct cgroup *c = &cgroups[k];
    snprintf(path, sizeof path, "%.1050s/cgroup.procs", c->dir);
    if (mkdir(c->dir, 0755) < 0 && errno != EEXIST) {
      snprintf(cgroup_error, sizeof cgroup_error, "mkdir %.1050s: %.200s", c->dir, strerror(errno));
    } else if (write_file(path, pid, 0) < 0) {
      snprintf(cgroup_error, sizeof cgroup_error, "moving the stage into %.1050s: %.200s", c->dir, strerror(errno));
      rmdir(c->dir);
    } else {
      c->joined = 1;
    }
  }
}

/*
 * The limits, once the message gives them (0: none): NPROC pids.max, MEMORY bytes (memory.max), CPU µs of
 * each 100 ms (cpu.max). A cgroup this host offered but that could not be made fails the run (fail closed).
 */
static void cgroup_limit(long nproc, long long memory, long cpu) {
  if (cgroup_error[0]) fail("cannot put the sandbox in its cgroup (%s)", cgroup_error);
  char path[1200], val[64];
  for (int k = 0; k < ncgroups; k++) {
    struct cgroup *c = &cgroups[k];
    const char *bad = NULL;
    if (c->pids && nproc > 0) {
      snprintf(path, sizeof path, "%.1050s/pids.max", c->dir);
      snprintf(val, sizeof val, "%ld\n", nproc);
      if (write_file(path, val, 0) < 0) bad = "process";
    }
    if (!bad && c->v2 && c->memory && memory > 0) {
      snprintf(path, sizeof path, "%.1050s/memory.max", c->dir);
      snprintf(val, sizeof val, "%lld\n", memory);
      if (write_file(path, val, 0) < 0) bad = "memory";
    }
    if (!bad && c->v2 && c->cpu && cpu > 0) {
      snprintf(path, sizeof path, "%.1050s/cpu.max", c->dir);
      snprintf(val, sizeof val, "%ld 100000\n", cpu);
      if (write_file(path, val, 0) < 0) bad = "cpu";
    }
    if (bad) fail("cannot set the sandbox's %s limit (%s): %s", bad, path, strerror(errno));
  }
}

/* The reaper's: remove them once the stage (and so the sandbox) has ended; the kernel may still count its
   last processes for a moment (EBUSY), for up to 2 s. Then the leftovers of stages killed with their reaper. */
static void cgroup_remove(void) {
  for (int k = 0; k < ncgroups; k++) {
    for (int tries = 0; tries < 200 && rmdir(cgroups[k].dir) < 0 && errno == EBUSY; tries++) usleep(10000);
    char parent[1100];
    snprintf(parent, sizeof parent, "%.1090s", cgroups[k].dir);
    char *slash = strrchr(parent, '/');
    if (!slash) continue;
    *slash = 0;
    DIR *d = opendir(parent);
    if (!d) continue;
    for (struct dirent *e; (e = readdir(d));) {
      char *end;
      if (strncmp(e->d_name, "silo-", 5) != 0) continue;
      long pid = strtol(e->d_name + 5, &end, 10);
      if (*end || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
      char stale[1400];
      snprintf(stale, sizeof stale, "%.1100s/%.255s", parent, e->d_name);
      rmdir(stale);
    }
    closedir(d);
  }
}

/* ---- the reaper ---- */

/* Remove a tree the sandbox may have left unwritable (overlayfs leaves work/work mode 000): each
   directory is made its owner's to empty before it is emptied. */
static void remove_tree(const char *path) {
  struct stat st;
  if (lstat(path, &st) < 0) return;
  if (!S_ISDIR(st.st_mode)) {
    unlink(path);
    return;
  }
  if ((st.st_mode & 0700) != 0700) chmod(path, 0700);
  DIR *d = opendir(path);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      char child[4096];
      if (snprintf(child, sizeof child, "%s/%s", path, e->d_name) >= (int)sizeof child) continue;
      remove_tree(child);
    }
    closedir(d);
  }
  rmdir(path);
}

#define MAX_REAP 64

static int any_changed(const char *file);

/*
 * The quarantine outlives silo: when silo's process ended before `silo __after` settled the protected names
 * (silo or its waiter was killed), DIR/settled is missing, a line of DIR/watch says a name changed, and
 * DIR/after (NUL-separated: silo's command line for it, written at the handover) runs now. This process
 * cannot be signalled by the sandbox (another session, outside its pid namespace).
 */
static void reap_quarantine(const char *dir) {
  char watch[4096], after[4096], settled[4096];
  snprintf(watch, sizeof watch, "%s/watch", dir);
  snprintf(after, sizeof after, "%s/after", dir);
  snprintf(settled, sizeof settled, "%s/settled", dir);
  if (access(settled, F_OK) == 0 || !any_changed(watch)) return;
  int fd = open(after, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  static char buf[16384];
  ssize_t r = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (r <= 0) return;
  buf[r] = 0;
  char *argv[32];
  int n = 0;
  for (char *p = buf; p < buf + r && n < 31; p += strlen(p) + 1) argv[n++] = p;
  argv[n] = NULL;
  pid_t c = fork();
  if (c == 0) {
    execv(argv[0], argv);
    _exit(127);
  }
  if (c > 0)
    while (waitpid(c, NULL, 0) < 0 && errno == EINTR) {}
}

/*
 * Never returns. See step 0 at the top. The directories go when silo's process ends, whatever program it
 * runs by then (silo hands a run over to its waiter with an execve, which closes silo's end of fd 4):
 * EOF only ends the lines. Without pidfds (Linux < 5.3; the overlay needs 5.11 anyway) EOF is the end.
 */
static void reap_loop(int fd, pid_t silo, int stagefd) {
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTSTP, SIG_IGN); /* a Ctrl-Z stops silo's process group (the terminal relay): not this one */
  int pidfd = (int)syscall(SYS_pidfd_open, silo, 0);
  static char *dirs[MAX_REAP];
  int ndirs = 0;
  static char buf[65536];
  size_t have = 0;
  for (;;) {
    ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    have += (size_t)r;
    char *line = buf, *nl;
    while ((nl = memchr(line, '\n', have - (size_t)(line - buf)))) {
      *nl = 0;
      if (strncmp(line, "+ ", 2) == 0 && ndirs < MAX_REAP) {
        dirs[ndirs++] = strdup(line + 2);
      } else if (strncmp(line, "- ", 2) == 0) {
        remove_tree(line + 2);
        for (int k = 0; k < ndirs; k++)
          if (dirs[k] && strcmp(dirs[k], line + 2) == 0) {
            free(dirs[k]);
            dirs[k] = NULL;
          }
      }
      line = nl + 1;
    }
    have -= (size_t)(line - buf);
    memmove(buf, line, have);
    if (have == sizeof buf - 1) have = 0; /* a line that long is not ours */
  }
  close(fd);
  for (int k = 0; k < 2; k++) {
    struct pollfd p = {.fd = k ? stagefd : pidfd, .events = POLLIN};
    if (p.fd >= 0)
      while (poll(&p, 1, -1) < 0 && errno == EINTR) {}
  }
  for (int k = 0; k < ndirs; k++)
    if (dirs[k]) reap_quarantine(dirs[k]);
  for (int k = 0; k < ndirs; k++)
    if (dirs[k]) remove_tree(dirs[k]);
  cgroup_remove();
  _exit(0);
}

/* ---- the waiter: silo itself, after it hands the run over (silo-stage --wait) ---- */

static volatile sig_atomic_t pending_signals[65];

static void on_forwarded(int sig) {
  pending_signals[sig] = 1;
  int saved = errno;
  if (write(sigchld_pipe[1], "s", 1) < 0) { /* a wake-up is pending anyway */ }
  errno = saved;
}

/* The children listed in /proc (CONFIG_PROC_CHILDREN); n of them at most. */
static int children_of(pid_t pid, pid_t *out, int n) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t r = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (r <= 0) return 0;
  buf[r] = 0;
  int k = 0;
  for (char *tok = strtok(buf, " \n"); tok && k < n; tok = strtok(NULL, " \n")) out[k++] = (pid_t)atol(tok);
  return k;
}

static int is_bwrap(pid_t pid) {
  char path[64], comm[32] = "";
  snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t r = read(fd, comm, sizeof comm - 1);
  close(fd);
  return r >= 5 && strncmp(comm, "bwrap\n", 6) == 0;
}

/*
 * Where a signal for the command goes (as runner/run.ts deliveryTarget). SIGINT and SIGQUIT are what a
 * terminal sends, and a terminal sends them to its whole foreground job: the foreground group of the
 * command's terminal (its pseudo-terminal), or with none, the command's process group (a shell's
 * foreground child among them: a shell that traps SIGINT waits for that child, and a child that did not
 * die of it tells the shell to go on). -GROUP then. SIGTERM and SIGHUP are what `kill` sends to one
 * process: the command alone. Without a terminal the sandbox's pid 1 is in that group, and ignores them
 * (no handler).
 */
static pid_t delivery_target(pid_t pid, int sig) {
  if (sig != SIGINT && sig != SIGQUIT) return pid;
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return pid;
  ssize_t r = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (r <= 0) return pid;
  buf[r] = 0;
  /* pid (comm) state ppid pgrp session tty_nr tpgid: comm may hold anything, so after the last ')'. */
  char *p = strrchr(buf, ')');
  long pgrp = 0, tpgid = 0;
  if (!p || sscanf(p + 1, " %*c %*d %ld %*d %*d %ld", &pgrp, &tpgid) != 2) return pid;
  return tpgid > 0 ? -(pid_t)tpgid : pgrp > 0 ? -(pid_t)pgrp : pid;
}

/* As runner/run.ts signalSandbox: the command is a child of bwrap's pid 1; before it runs, the stage. */
static void signal_sandbox(pid_t stage, int sig) {
  pid_t bwrap = is_bwrap(stage) ? stage : 0, kids[64], inits[8], done[64];
  if (!bwrap) {
    int n = children_of(stage, kids, 64);
    for (int k = 0; k < n && !bwrap; k++)
      if (is_bwrap(kids[k])) bwrap = kids[k];
  }
  int sent = 0, ndone = 0;
  if (bwrap) {
    int ni = children_of(bwrap, inits, 8);
    for (int i = 0; i < ni; i++) {
      int n = children_of(inits[i], kids, 64);
      for (int k = 0; k < n; k++) {
        pid_t target = delivery_target(kids[k], sig);
        int again = 0; /* each group once: a process gets a Ctrl-C once */
        for (int j = 0; j < ndone; j++) again |= done[j] == target;
        if (again) continue;
        if (ndone < 64) done[ndone++] = target;
        sent += kill(target, sig) == 0;
      }
    }
  }
  if (!sent) kill(stage, sig);
}

/*
 * Names a host tool runs or trusts in any directory (src/app/git-apply.ts NESTED_PROTECTED, the same list):
 * below the root only (app/protect.ts guards the root's), `config` and `config.toml` in a `.cargo`.
 */
static int is_protected(const char *n, int in_cargo) {
  static const char *names[] = {".envrc", ".vscode", ".devcontainer", ".idea", ".zed", ".helix", ".nvim.lua", ".nvimrc",
                                ".exrc", "mise.toml", ".mise.toml", "mise.local.toml", ".mise.local.toml", ".mise",
                                ".pre-commit-config.yaml", ".githooks", ".husky", NULL};
  for (const char **p = names; *p; p++)
    if (strcmp(n, *p) == 0) return 1;
  size_t l = strlen(n), ls = strlen(".code-workspace");
  if (l >= ls && strcmp(n + l - ls, ".code-workspace") == 0) return 1;
  return in_cargo && (strcmp(n, "config") == 0 || strcmp(n, "config.toml") == 0);
}

/*
 * Below DIR (an open directory, closed here), is there an entry named .git (ROOT: not DIR's own) whose
 * inode changed at or after START (ctime, which the sandbox cannot set back), or such an entry inside a
 * .git directory (objects/ aside)? A directory holding HEAD is one git may take for a repository (a bare
 * one planted anywhere, a .git renamed): changed itself, or any entry inside, counts the same. So does a
 * protected name below the root (is_protected), or an entry inside one. Names only, d_type where the
 * filesystem gives it, one fstatat (HEAD) per directory; more than *BUDGET entries count as yes (silo
 * then looks itself, src/app/git-apply.ts, and says what it could not check). IN_GIT: 0 outside, 1 at the
 * top of a git directory, more below (2 and up also inside a protected directory: nothing skipped).
 */
static int git_changed(int dir, int root, int in_git, time_t start, long *budget, int depth, int in_cargo) {
  struct stat st;
  if (!in_git && dir >= 0 && fstatat(dir, "HEAD", &st, AT_SYMLINK_NOFOLLOW) == 0) {
    /* The root's own ctime changes with any new file: there, its entries say (all are looked at). */
    if (depth > 0 && fstat(dir, &st) == 0 && st.st_ctim.tv_sec >= start) return close(dir), 1;
    in_git = 1;
  }
  DIR *d = fdopendir(dir);
  if (!d) return close(dir), 0;
  struct dirent *e;
  int found = 0;
  while (!found && (e = readdir(d))) {
    const char *n = e->d_name;
    if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2]))) continue;
    if (--*budget < 0) found = 1;
    int is_git = strcmp(n, ".git") == 0;
    if (found || (root && is_git)) continue;
    int prot = !in_git && depth > 0 && is_protected(n, in_cargo);
    int is_dir = e->d_type == DT_DIR;
    if (in_git || is_git || prot || e->d_type == DT_UNKNOWN) {
      if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
      if ((in_git || is_git || prot) && st.st_ctim.tv_sec >= start) found = 1;
      is_dir = S_ISDIR(st.st_mode);
    }
    if (found || !is_dir || (in_git == 1 && strcmp(n, "objects") == 0)) continue;
    /* Each level holds a descriptor and a frame: a tree deeper than this, or one it cannot open, is
       silo's to walk (it counts as changed), never skipped. */
    int sub = depth < 256 ? openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    int level = in_git ? in_git + 1 : is_git ? 1 : prot ? 2 : 0;
    if (sub >= 0) found = git_changed(sub, 0, level, start, budget, depth + 1, !in_git && depth > 0 && strcmp(n, ".cargo") == 0);
    else found = depth >= 256 || errno != ENOENT; /* unreadable (mode 000), out of descriptors: silo looks */
  }
  closedir(d);
  return found;
}

/*
 * One line of RUNDIR/watch (app/protect.ts watchLines): "PATH" changed when PATH exists now (a protected
 * path that did not); "=SIG\tPATH[\tTARGET]" when lstat(PATH) is no longer SIG, "ino:ctime_ns", or it
 * no longer links to TARGET (a protected symlink); "*N\tDIR\tSUFFIX" when DIR no longer holds N names
 * ending in SUFFIX (*.code-workspace); "/DIR/" when DIR has an entry (the .git overlay's upper:
 * app/git-guard.ts); "?START\tBUDGET\tROOT" when git_changed finds a .git below ROOT (ROOT's own
 * skipped: overlaid, or writable by trusted config), "+START\tBUDGET\tROOT" the same with ROOT/.git.
 */
static int changed(char *line) {
  struct stat st;
  size_t len = strlen(line);
  if (line[0] == '/' && len > 1 && line[len - 1] == '/') {
    DIR *d = opendir(line);
    struct dirent *e;
    int any = 0;
    while (d && !any && (e = readdir(d))) any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d) closedir(d);
    return any;
  }
  if (line[0] == '?' || line[0] == '+') {
    char *p;
    time_t start = (time_t)strtoll(line + 1, &p, 10);
    long budget = *p == '\t' ? strtol(p + 1, &p, 10) : 0;
    if (*p != '\t') return 1;
    return git_changed(open(p + 1, O_RDONLY | O_DIRECTORY | O_CLOEXEC), line[0] == '?', 0, start, &budget, 0, 0);
  }
  char *tab = strchr(line, '\t');
  if (line[0] == '/' || !tab) return lstat(line, &st) == 0;
  *tab++ = 0;
  if (line[0] == '=') {
    char sig[64], target[4096], *want = strchr(tab, '\t');
    if (want) *want++ = 0;
    if (lstat(tab, &st) != 0) return 1;
    snprintf(sig, sizeof sig, "%llu:%llu", (unsigned long long)st.st_ino,
             (unsigned long long)st.st_ctim.tv_sec * 1000000000ULL + (unsigned long long)st.st_ctim.tv_nsec);
    if (strcmp(sig, line + 1) != 0) return 1;
    /* The target too: where ctime is coarse, a new link can get the old one's inode within a tick. */
    ssize_t n = want ? readlink(tab, target, sizeof target - 1) : 0;
    if (n < 0) return 1;
    target[n] = 0;
    return want && strcmp(target, want) != 0;
  }
  char *suffix = strchr(tab, '\t');
  if (!suffix) return 1;
  *suffix++ = 0;
  DIR *d = opendir(tab);
  if (!d) return 1;
  size_t ls = strlen(suffix);
  long n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t l = strlen(e->d_name);
    n += l >= ls && strcmp(e->d_name + l - ls, suffix) == 0;
  }
  closedir(d);
  return n != atol(line + 1);
}

static int any_changed(const char *file) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  static char buf[65536];
  ssize_t r = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (r <= 0) return 0;
  buf[r] = 0;
  char *save;
  for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
    if (changed(line)) return 1;
  return 0;
}

/* Run silo (the waiter's SILO... argv) with VERB and up to three arguments after it. Returns on failure. */
static void exec_silo(char **silo, int nsilo, const char *verb, const char *a, const char *b, const char *c) {
  char *argv[20];
  int k = 0;
  for (; k < nsilo && k < 15; k++) argv[k] = silo[k];
  argv[k++] = (char *)verb;
  const char *extra[] = {a, b, c};
  for (int i = 0; i < 3 && extra[i]; i++) argv[k++] = (char *)extra[i];
  argv[k] = NULL;
  execv(argv[0], argv);
}

/* `SILO VERB FILE` in a child that dies with the waiter: stdin and stdout /dev/null, stderr the caller's. */
static pid_t spawn_silo(char **silo, int nsilo, const char *verb, const char *file) {
  pid_t p = fork();
  if (p != 0) return p;
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) dup2(null, 1), dup2(null, 0);
  for (int fd = 3; fd < 1024; fd++) close(fd); /* the reaper's socket above all: the waiter's alone */
  exec_silo(silo, nsilo, verb, file, NULL, NULL);
  _exit(127);
}

/*
 * silo-stage --wait STAGE RUNDIR TTY PROXY -- SILO...
 *
 * What silo runs in its own process (execve) once its sandbox is under way, so that neither its exit
 * nor its teardown is on the path of the command's exit code. It waits for STAGE (its child), passes
 * SIGINT/SIGTERM/SIGHUP/SIGQUIT on to the command as silo does (the sandbox's own session has no part in
 * silo's terminal: with TTY 1 the stage relays Ctrl-C through the sandbox's pseudo-terminal), starts `SILO __proxy RUNDIR/handoff.json` on the first SIGURG when PROXY is 1, and
 * `SILO __register ...` once the sandbox has run 100 ms. Then bwrap's status gives the
 * exit code; when it does not (the sandbox failed), or a line of RUNDIR/watch says a protected name may
 * have changed, `SILO __after RUNDIR/handoff.json CODE SIGNAL` takes over to report and clean up.
 */
static void wait_mode(int argc, char **argv) {
  if (argc < 8 || strcmp(argv[6], "--") != 0) {
    dprintf(2, "usage: silo-stage --wait STAGE RUNDIR TTY PROXY -- SILO...\n");
    _exit(EXIT_STAGE);
  }
  pid_t stage = (pid_t)atol(argv[2]);
  rundir = argv[3];
  int proxy = strcmp(argv[5], "1") == 0, register_pending = 1; /* TTY (argv[4]): no longer needed here */
  char **silo = &argv[7];
  int nsilo = argc - 7;
  char handoff[4096], watch[4096], status_path[4096];
  snprintf(handoff, sizeof handoff, "%s/handoff.json", rundir);
  snprintf(watch, sizeof watch, "%s/watch", rundir);
  snprintf(status_path, sizeof status_path, "%s/status", rundir);

  if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK) < 0) _exit(EXIT_STAGE);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_flags = SA_RESTART;
  sa.sa_handler = on_sigchld;
  sigaction(SIGCHLD, &sa, NULL);
  sa.sa_handler = on_forwarded;
  int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGURG};
  for (size_t k = 0; k < sizeof sigs / sizeof *sigs; k++) sigaction(sigs[k], &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  pid_t proxy_pid = 0;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int status = 0, stage_done = 0;
  while (!stage_done) {
    int timeout = -1;
    if (register_pending) {
      struct timespec t;
      clock_gettime(CLOCK_MONOTONIC, &t);
      long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
      if (ms >= 100) {
        spawn_silo(silo, nsilo, "__register", handoff);
        register_pending = 0;
      } else {
        timeout = (int)(100 - ms);
      }
    }
    struct pollfd p = {.fd = sigchld_pipe[0], .events = POLLIN};
    if (poll(&p, 1, timeout) < 0 && errno != EINTR) break;
    char buf[64];
    while (read(sigchld_pipe[0], buf, sizeof buf) > 0) {}
    for (int sig = 1; sig < 65; sig++) {
      if (!pending_signals[sig]) continue;
      pending_signals[sig] = 0;
      if (sig == SIGURG) {
        if (proxy && !proxy_pid) proxy_pid = spawn_silo(silo, nsilo, "__proxy", handoff);
      } else {
        signal_sandbox(stage, sig);
      }
    }
    pid_t dead;
    int st;
    while ((dead = waitpid(-1, &st, WNOHANG)) > 0) {
      if (dead == stage) status = st, stage_done = 1;
      if (dead == proxy_pid) proxy_pid = -1; /* it failed: the relays' connections fail (closed) */
    }
  }
  if (proxy_pid > 0) kill(proxy_pid, SIGTERM);

  /* bwrap's JSON status: {"child-pid": N} once the command started, {"exit-code": N} when it ended. */
  int code = -1;
  int fd = open(status_path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[4096];
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r > 0) {
      buf[r] = 0;
      char *e = strstr(buf, "\"exit-code\"");
      if (e && (e = strchr(e, ':'))) code = atoi(e + 1);
    }
  }
  if (code >= 0 && !any_changed(watch)) {
    /* Settled: nothing protected changed while the sandbox ran. Said before the exit code reaches the
       shell, or the reaper (which checks after this process ends) would take a file the user writes
       next, a silo.toml say, for one the sandbox planted. */
    char settled[4096];
    snprintf(settled, sizeof settled, "%s/settled", rundir);
    int s = open(settled, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (s >= 0) close(s);
    _exit(code);
  }
  char c[16], g[16];
  snprintf(c, sizeof c, "%d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  snprintf(g, sizeof g, "%d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  exec_silo(silo, nsilo, "__after", handoff, c, g);
  dprintf(2, "silo: cannot report how the sandbox ended (%s: %s)\n", silo[0], strerror(errno));
  _exit(code >= 0 ? code : EXIT_STAGE);
}

/* ---- the control message ---- */

struct reader {
  const unsigned char *p, *end;
};

static const char *next_str(struct reader *r) {
  const unsigned char *nul = memchr(r->p, 0, (size_t)(r->end - r->p));
  if (!nul) fail("bad control message: a field is not terminated");
  const char *s = (const char *)r->p;
  r->p = nul + 1;
  return s;
}

static long next_num(struct reader *r, long max) {
  const char *s = next_str(r);
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == 0 || *end || v < 0 || v > max) fail("bad control message: bad number %s", s);
  return v;
}

static unsigned char *read_message(int fd, size_t *len) {
  char head[64];
  size_t n = 0;
  int lines = 0;
  while (lines < 2) {
    if (n == sizeof head - 1) fail("bad control message header");
    ssize_t r = read(fd, head + n, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (n == 0) _exit(0); /* silo gave up before the sandbox was ready to start */
      fail("control message cut short");
    }
    if (head[n++] == '\n') lines++;
  }
  head[n] = 0;
  unsigned long total;
  if (sscanf(head, "SILO-STAGE 1\n%lu\n", &total) != 1 || total > (64UL << 20)) fail("bad control message header");
  unsigned char *buf = malloc(total + 1);
  if (!buf) fail("out of memory");
  if (read_full(fd, buf, total) < 0) fail("control message cut short");
  *len = total;
  return buf;
}

int main(int argc, char **argv) {
  /* silo-stage --relays-only RELAY...: the relays alone, in the current namespaces, until killed (for the
     throughput benchmark, scripts/bench/net.ts). */
  if (argc >= 3 && strcmp(argv[1], "--relays-only") == 0) {
    static struct relay relays[MAX_RELAYS];
    int n = argc - 2 > MAX_RELAYS ? MAX_RELAYS : argc - 2;
    for (int k = 0; k < n; k++) open_relay(argv[k + 2], &relays[k]);
    dprintf(1, "listening\n");
    lower_max_connections();
    serve_relays(relays, n, -1);
  }
  if (argc >= 2 && strcmp(argv[1], "--wait") == 0) wait_mode(argc, argv);
  /* silo-stage --cgroups-of CGROUP MOUNTINFO UID: the cgroups it would make for a process with these
     /proc/self files and uid (the tests' fake trees: limits.ts detectLimits must agree), one a line. */
  if (argc == 5 && strcmp(argv[1], "--cgroups-of") == 0) {
    cgroup_find(argv[2], argv[3], (uid_t)atol(argv[4]));
    for (int k = 0; k < ncgroups; k++)
      dprintf(1, "v%d %s%s%s%s\n", cgroups[k].v2 ? 2 : 1, cgroups[k].dir, cgroups[k].pids ? " pids" : "", cgroups[k].memory ? " memory" : "", cgroups[k].cpu ? " cpu" : "");
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "--ctty") == 0) ctty_mode(argv + 2);
  if (argc != 4 || strcmp(argv[1], "--control") != 0) {
    dprintf(2, "usage: silo-stage --control PARENT NET   (fd 3: control, fd 4: reaper)\n");
    return EXIT_STAGE;
  }
  silo_pid = (pid_t)atol(argv[2]);
  int net = strcmp(argv[3], "1") == 0;
  lower_max_connections();
  const int control = 3, reaper = 4;

  /* 0. The reaper, before any namespace: it removes host directories as the invoking user. */
  /* The stage (and the sandbox under it), opened before the fork: a getppid() in the child would be init's
     once the stage had already exited, and the reaper would wait for pid 1 forever. */
  int stagefd = (int)syscall(SYS_pidfd_open, getpid(), 0);
  cgroup_find("/proc/self/cgroup", "/proc/self/mountinfo", getuid());
  pid_t r = fork();
  if (r < 0) fail("fork: %s", strerror(errno));
  if (r == 0) {
    /* Off the caller's stdio: a `$(silo run ...)` waits for every holder of its pipe. */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      close(null);
    }
    close(control);
    reap_loop(reaper, silo_pid, stagefd);
  }
  if (stagefd >= 0) close(stagefd);
  close(reaper);
  cgroup_join();

  /* 1. Namespaces, uid/gid maps and private mounts, while silo prepares the rest. A failure is reported
     once the message names RUNDIR. */
  uid_t uid = getuid();
  gid_t gid = getgid();
  char early[512] = "";
  long host_limits[N_USER_LIMITS];
  read_user_limits(host_limits);
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS | (net ? CLONE_NEWNET : 0)) < 0)
    snprintf(early, sizeof early, "cannot create the sandbox's namespaces (unshare: %s); unprivileged user namespaces may be disabled", strerror(errno));
  /* New credentials clear the parent-death signal: set it now, and stop if silo is already gone. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) fail("prctl: %s", strerror(errno));
  if (getppid() != silo_pid) _exit(EXIT_STAGE);
  if (!early[0]) {
    char uidmap[64], gidmap[64];
    snprintf(uidmap, sizeof uidmap, "0 %u 1\n", (unsigned)uid);
    snprintf(gidmap, sizeof gidmap, "0 %u 1\n", (unsigned)gid);
    const char *bad = write_file("/proc/self/setgroups", "deny", 1) < 0 ? "/proc/self/setgroups"
                      : write_file("/proc/self/uid_map", uidmap, 0) < 0 ? "/proc/self/uid_map"
                      : write_file("/proc/self/gid_map", gidmap, 0) < 0 ? "/proc/self/gid_map"
                                                                          : NULL;
    if (bad) snprintf(early, sizeof early, "writing %s: %s", bad, strerror(errno));
    else if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) snprintf(early, sizeof early, "making mounts private: %s", strerror(errno));
    else {
      halve_user_limits(host_limits);
      prefer_for_oom();
    }
  }

  /* 2. What to run. */
  size_t len;
  unsigned char *msg = read_message(control, &len);
  close(control);
  struct reader rd = {msg, msg + len};
  rundir = next_str(&rd);
  const char *lowers = next_str(&rd), *upper = next_str(&rd), *work = next_str(&rd);
  int fallback = strcmp(next_str(&rd), "1") == 0;
  const char *gitlower = next_str(&rd), *gitdir = next_str(&rd);
  int nrelays = (int)next_num(&rd, MAX_RELAYS);
  char *relay_specs[MAX_RELAYS];
  for (int k = 0; k < nrelays; k++) relay_specs[k] = (char *)next_str(&rd);
  int nfds = (int)next_num(&rd, 16);
  const unsigned char *blobs[16];
  size_t lens[16];
  for (int k = 0; k < nfds; k++) {
    lens[k] = (size_t)next_num(&rd, (long)len);
    if (lens[k] > (size_t)(rd.end - rd.p)) fail("bad control message: a descriptor's bytes are cut short");
    blobs[k] = rd.p;
    rd.p += lens[k];
  }
  int cargc = (int)next_num(&rd, 4096);
  if (cargc < 1) fail("bad control message: no bwrap command");
  char **cmd = calloc((size_t)cargc + 1, sizeof *cmd);
  if (!cmd) fail("out of memory");
  for (int k = 0; k < cargc; k++) cmd[k] = (char *)next_str(&rd);
  int tty = rd.p < rd.end && strcmp(next_str(&rd), "1") == 0;
  /* Limits, after the TTY field (argv.ts stageLimits): NPROC ROOTFS MEMORY CPU. */
  nproc_cap = next_num(&rd, 1L << 22);
  long long rootfs = next_num(&rd, LONG_MAX), memory = next_num(&rd, LONG_MAX);
  long cpu = next_num(&rd, 1L << 30);
  if (early[0]) fail("%s", early);
  if (nrelays > 0 && !net) fail("relays need a network namespace");
  if (uid == 0) protect_host_devices();
  cgroup_limit(nproc_cap, memory, cpu);

  /* 3. The overlay. Its paths are relative to the run dir (symlinks there name the layers), so that the
     sandbox's /proc/self/mountinfo, which shows the options as given, does not show SILO_HOME. */
  if (chdir(rundir) < 0) fail("chdir %s: %s", rundir, strerror(errno));
  char root[4096];
  snprintf(root, sizeof root, "%s/root", rundir);
  if (fallback && rootfs > 0) {
    mount_upper_tmpfs(lowers, upper, work, root, rootfs);
  } else if (mount_overlay(lowers, upper, work, root, fallback) < 0) {
    int first = errno;
    if (!fallback) fail("mount overlay: %s", strerror(first));
    char t[4096], u[4096], w[4096];
    snprintf(t, sizeof t, "%s/t", rundir);
    snprintf(u, sizeof u, "%s/t/u", rundir);
    snprintf(w, sizeof w, "%s/t/w", rundir);
    if (mkdir(t, 0700) < 0 || mount("silo", t, "tmpfs", 0, "mode=0700") < 0 || mkdir(u, 0755) < 0 || mkdir(w, 0755) < 0)
      fail("mount overlay: %s; tmpfs fallback: %s", strerror(first), strerror(errno));
    if (mount_overlay(lowers, u, w, root, 1) < 0) fail("mount overlay: %s; on a tmpfs upper: %s", strerror(first), strerror(errno));
  }
  if (gitlower[0]) {
    char u[4096], w[4096], m[4096];
    snprintf(u, sizeof u, "%s/upper", gitdir);
    snprintf(w, sizeof w, "%s/work", gitdir);
    snprintf(m, sizeof m, "%s/mnt", gitdir);
    if (mount_overlay(gitlower, u, w, m, 1) < 0)
      fail("mount the .git overlay: %s (a trusted [mount] writable = [\".git\"] binds .git directly)", strerror(errno));
  }
  place_fds(blobs, lens, nfds);

  /* 4. The relays and the terminal, then bwrap. */
  static struct relay relays[MAX_RELAYS];
  if (net) {
    loopback_up();
    for (int k = 0; k < nrelays; k++) open_relay(relay_specs[k], &relays[k]);
  }
  int pty = tty && terminal_open();
  if (nrelays > 0 || pty) {
    /* This process stays, as the relays' server, the terminal's relay and bwrap's parent; bwrap starts in a child. */
    pid_t child = fork();
    if (child < 0) fail("fork: %s", strerror(errno));
    if (child == 0) exec_bwrap(pty ? terminal_child(cmd) : cmd);
    if (pty) close(term.slave);
    for (int k = 3; k < 1024; k++) {
      int keep = k == term.master;
      for (int j = 0; j < nrelays; j++) keep |= relays[j].fd == k;
      if (!keep) close(k); /* bwrap's descriptors are its own now */
    }
    serve_relays(relays, nrelays, child);
  }
  exec_bwrap(cmd);
  return EXIT_STAGE;
}
