/* cli_cluster.c - dynvme cluster up: a local cluster of K nodes on
 * loopback, in the foreground.
 *
 * Layout of DIR (default ./data/cluster), written on the first start:
 *   DIR/secret             the cluster secret: 32 random bytes as 64 hex digits (0600)
 *   DIR/nodeN/dynvme.conf  node N's config: every cluster directive, absolute paths
 *   DIR/nodeN/data.img     node N's data file (created by the node)
 *   DIR/nodeN/dynvme.log   node N's log (appended)
 *   DIR/cluster.info       "nodes K" and "base-port P": written last, so a DIR
 *                          without it is incomplete
 * A later `cluster up` on the same DIR reuses it as it is (same ring, same
 * data); --nodes or --base-port that differ from it are an error.
 *
 * Node N: RESP on P+N-1, HTTP on P+1000+N-1, internode on P+10000+N-1.
 * Each node is an ordinary `dynvme serve --config DIR/nodeN/dynvme.conf`
 * child; one killed by hand is reported and can be restarted by hand with
 * that command. SIGINT or SIGTERM: every running child gets SIGTERM and is
 * waited for (SIGKILL after CLUSTER_STOP_MS). Children get SIGTERM if this
 * process dies (PR_SET_PDEATHSIG).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "base/fs.h"
#include "cli/cli.h"
#include "cli/cli_resp.h"

#define CLUSTER_NODES_MAX 64       /* RING_NODES_MAX */
#define CLUSTER_READY_MS 60000     /* every node up and connected to every peer */
#define CLUSTER_STOP_MS 30000
#define CPATH (PATH_MAX + 64)      /* DIR (PATH_MAX) and a node file name */

static const char cluster_usage[] =
	"usage: dynvme cluster up [--nodes K] [--base-port P] [--data DIR] [--size BYTES]\n"
	"                         [--checked-sets yes|no]\n"
	"\n"
	"Starts a local cluster of K dynvme nodes on 127.0.0.1 in the foreground (defaults:\n"
	"3 nodes, base port 7000, DIR ./data/cluster, 512M data file per node). Node N serves\n"
	"RESP on P+N-1, HTTP on P+1000+N-1 and talks to its peers on P+10000+N-1. The first\n"
	"start writes DIR/nodeN/dynvme.conf for each node and a cluster secret DIR/secret\n"
	"(mode 0600); a later start on the same DIR reuses them (same ring, same data).\n"
	"A node killed by hand comes back with: dynvme serve --config DIR/nodeN/dynvme.conf\n"
	"Ctrl-C (SIGINT) or SIGTERM stops every node cleanly.\n"
	"--checked-sets yes writes cluster-checked-sets yes into the new config files\n"
	"(plain SETs through a replica skip their read; see man dynvme).\n";

struct up_opts {
	unsigned nodes, base_port;
	bool nodes_set, port_set;
	const char *data;
	const char *size;
	bool checked_sets;
};

struct child {
	pid_t pid;
	bool running;
};

static char g_dir[PATH_MAX];
static struct child g_kids[CLUSTER_NODES_MAX + 1];

static int parse_opts(int argc, char **argv, struct up_opts *o)
{
	*o = (struct up_opts){.nodes = 3, .base_port = 7000, .data = "./data/cluster", .size = "512M"};
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc) {
			fprintf(stderr, "dynvme cluster up: '%s' needs a value\n\n%s", a, cluster_usage);
			return -EINVAL;
		}
		const char *v = argv[++i];
		char *end = NULL;
		unsigned long n = strtoul(v, &end, 10);
		bool num = *v && !*end && n <= 65535;
		if (!strcmp(a, "--nodes") && num && n >= 1 && n <= CLUSTER_NODES_MAX) {
			o->nodes = (unsigned)n;
			o->nodes_set = true;
		} else if (!strcmp(a, "--base-port") && num && n >= 1) {
			o->base_port = (unsigned)n;
			o->port_set = true;
		} else if (!strcmp(a, "--data") && *v) {
			o->data = v;
		} else if (!strcmp(a, "--checked-sets") && (!strcmp(v, "yes") || !strcmp(v, "no"))) {
			o->checked_sets = !strcmp(v, "yes");
		} else if (!strcmp(a, "--size") && *v) {
			unsigned long long b;
			if (cli_parse_size(v, &b)) {
				fprintf(stderr, "dynvme cluster up: --size '%s' is not a size\n", v);
				return -EINVAL;
			}
			o->size = v;
		} else {
			fprintf(stderr, "dynvme cluster up: bad option '%s %s' (--nodes 1..%d, --base-port, --data, --size, --checked-sets yes|no)\n\n%s",
				a, v, CLUSTER_NODES_MAX, cluster_usage);
			return -EINVAL;
		}
	}
	return 0;
}

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static void node_path(char *out, size_t len, unsigned n, const char *file)
{
	snprintf(out, len, "%s/node%u%s%s", g_dir, n, *file ? "/" : "", file);
}

/* Close f after making its contents and its directory entry durable. */
static int close_durable(FILE *f, const char *path)
{
	bool bad = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
	if (fclose(f) || bad)
		return -EIO;
	return dv_fsync_parent(path);
}

/* A config value, quoted for config.c (" and \ escaped). */
static void quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static int write_secret(const char *path)
{
	uint8_t r[32];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -EIO;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	char hex[66];
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", r[i]);
	hex[64] = '\n';
	ssize_t w = write(fd, hex, 65);
	int err = w == 65 && fsync(fd) == 0 ? 0 : -EIO;
	close(fd);
	memset(r, 0, sizeof(r));
	memset(hex, 0, sizeof(hex));
	return err ? err : dv_fsync_parent(path);
}

static int write_node_config(const struct up_opts *o, unsigned n, uint64_t cluster_id, const char *secret)
{
	char dir[CPATH], path[CPATH], data[CPATH];
	node_path(dir, sizeof(dir), n, "");
	int err = mkdir_p(dir);
	if (err)
		return err;
	node_path(path, sizeof(path), n, "dynvme.conf");
	node_path(data, sizeof(data), n, "data.img");
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	unsigned p = o->base_port;
	fprintf(f, "# Written by dynvme cluster up: node %u of %u. Restart it by hand with\n"
		   "#   dynvme serve --config %s\n",
		n, o->nodes, path);
	fprintf(f, "bind 127.0.0.1\nport %u\nhttp-port %u\ndata ", p + n - 1, p + 1000 + n - 1);
	quoted(f, data);
	fprintf(f, "\nsize %s\nzone-bytes 16M\nthreads 1\n", o->size);
	fprintf(f, "node-id %u\ncluster-id %016llx\ncluster-secret-file ", n, (unsigned long long)cluster_id);
	quoted(f, secret);
	fprintf(f, "\ninternode-bind 127.0.0.1\ninternode-port %u\npartitions 1024\ncluster-timeout-ms 5000\n",
		p + 10000 + n - 1);
	for (unsigned m = 1; m <= o->nodes; m++)
		if (m != n)
			fprintf(f, "peer %u 127.0.0.1:%u 127.0.0.1:%u\n", m, p + 10000 + m - 1, p + m - 1);
	fprintf(f, "keyspace 0 default n=3 r=2 w=2 policy=siblings\nkeyspace 1 lww n=3 r=2 w=2 policy=lww\n");
	if (o->checked_sets)
		fprintf(f, "cluster-checked-sets yes\n");
	return close_durable(f, path);
}

static int create_cluster(const struct up_opts *o)
{
	char secret[CPATH], info[CPATH];
	snprintf(secret, sizeof(secret), "%s/secret", g_dir);
	snprintf(info, sizeof(info), "%s/cluster.info", g_dir);
	if (!exists(secret)) {
		int err = write_secret(secret);
		if (err) {
			fprintf(stderr, "dynvme cluster up: cannot write %s: %s\n", secret, strerror(-err));
			return err;
		}
	}
	uint64_t id = 0;
	while (id == 0)
		if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
			return -EIO;
	for (unsigned n = 1; n <= o->nodes; n++) {
		int err = write_node_config(o, n, id, secret);
		if (err) {
			fprintf(stderr, "dynvme cluster up: cannot write node %u's config: %s\n", n, strerror(-err));
			return err;
		}
	}
	FILE *f = fopen(info, "w");
	if (!f || fprintf(f, "nodes %u\nbase-port %u\ncluster-id %016llx\n", o->nodes, o->base_port,
			  (unsigned long long)id) < 0 || close_durable(f, info)) {
		fprintf(stderr, "dynvme cluster up: cannot write %s\n", info);
		return -EIO;
	}
	printf("created a %u-node cluster in %s (cluster id %016llx)\n", o->nodes, g_dir, (unsigned long long)id);
	return 0;
}

/* An existing DIR: its node count and base port must match what was asked. */
static int reuse_cluster(struct up_opts *o, const char *info)
{
	FILE *f = fopen(info, "r");
	unsigned nodes = 0, port = 0;
	if (!f || fscanf(f, "nodes %u base-port %u", &nodes, &port) != 2 || nodes < 1 || nodes > CLUSTER_NODES_MAX ||
	    port < 1 || port > 65535) {
		if (f)
			fclose(f);
		fprintf(stderr, "dynvme cluster up: %s is damaged: remove %s to start a new cluster\n", info, g_dir);
		return -EINVAL;
	}
	fclose(f);
	if (o->nodes_set && o->nodes != nodes) {
		fprintf(stderr, "dynvme cluster up: %s holds a %u-node cluster, not %u: run it with --nodes %u, or use "
				"another --data directory (membership changes come in a later version)\n",
			g_dir, nodes, o->nodes, nodes);
		return -EINVAL;
	}
	if (o->port_set && o->base_port != port) {
		fprintf(stderr, "dynvme cluster up: %s was created with --base-port %u, not %u: its config files "
				"hold those ports\n", g_dir, port, o->base_port);
		return -EINVAL;
	}
	o->nodes = nodes;
	o->base_port = port;
	for (unsigned n = 1; n <= nodes; n++) {
		char path[CPATH];
		node_path(path, sizeof(path), n, "dynvme.conf");
		if (!exists(path)) {
			fprintf(stderr, "dynvme cluster up: %s is missing: remove %s to start a new cluster\n", path, g_dir);
			return -ENOENT;
		}
	}
	printf("reusing the %u-node cluster in %s\n", nodes, g_dir);
	return 0;
}

static bool port_free(unsigned port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return true;
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	bool ok = bind(s, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(s);
	return ok;
}

/* The kernel's range of ephemeral ports (the local ports of outgoing
 * connections): a node's listening port in it may be taken by any client's
 * connection before the node binds it, at a restart most of all. */
static bool ephemeral_range(unsigned *lo, unsigned *hi)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	if (!f)
		return false;
	bool ok = fscanf(f, "%u %u", lo, hi) == 2 && *lo <= *hi;
	fclose(f);
	return ok;
}

/* A node's RESP, HTTP and internode ports: base port + node - 1 + these. */
static const unsigned port_offset[3] = {0, 1000, 10000};

static void warn_ephemeral(const struct up_opts *o)
{
	static const char *what[3] = {"RESP", "HTTP", "internode"};
	unsigned lo, hi;
	if (!ephemeral_range(&lo, &hi))
		return;
	for (unsigned i = 0; i < 3; i++) {
		unsigned first = o->base_port + port_offset[i], last = first + o->nodes - 1;
		if (last >= lo && first <= hi)
			fprintf(stderr, "dynvme cluster up: warning: the %s ports %u..%u are in the kernel's ephemeral "
					"range %u..%u (net.ipv4.ip_local_port_range): an outgoing connection may hold one "
					"when a node starts; a --base-port of at most %u keeps every port below it\n",
				what[i], first, last, lo, hi, lo > 10000 + o->nodes ? lo - 10000 - o->nodes : 1);
	}
}

static int check_ports(const struct up_opts *o)
{
	warn_ephemeral(o);
	for (unsigned n = 1; n <= o->nodes; n++) {
		for (unsigned i = 0; i < 3; i++) {
			unsigned port = o->base_port + port_offset[i] + n - 1;
			if (!port_free(port)) {
				fprintf(stderr, "dynvme cluster up: port %u (node %u) is in use: is this cluster already "
						"running, or pick another --base-port for a new --data directory\n",
					port, n);
				return -EADDRINUSE;
			}
		}
	}
	return 0;
}

static pid_t spawn(unsigned n, const char *self)
{
	char conf[CPATH], log[CPATH];
	node_path(conf, sizeof(conf), n, "dynvme.conf");
	node_path(log, sizeof(log), n, "dynvme.log");
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	/* Child: a node that dies with us, logging to its file, in a process
	 * group of its own: a terminal's Ctrl-C (SIGINT to the foreground
	 * group) reaches cluster up alone, which stops the nodes in order
	 * (before, each node got it too, exited at once, and cluster up
	 * reported it as a node that "exited with status 0 ... restart it"). */
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || nul < 0)
		_exit(1);
	dup2(nul, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	execl(self, "dynvme", "serve", "--config", conf, (char *)NULL);
	_exit(127);
}

static unsigned reap(const struct up_opts *o, bool report)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (unsigned n = 1; n <= o->nodes; n++) {
			if (g_kids[n].pid != pid || !g_kids[n].running)
				continue;
			g_kids[n].running = false;
			if (!report)
				break;
			char conf[CPATH];
			node_path(conf, sizeof(conf), n, "dynvme.conf");
			if (WIFSIGNALED(status))
				printf("node %u (pid %d) was killed by signal %d; restart it with: dynvme serve --config %s\n",
				       n, (int)pid, WTERMSIG(status), conf);
			else
				printf("node %u (pid %d) exited with status %d (see %s/node%u/dynvme.log); restart it with: "
				       "dynvme serve --config %s\n", n, (int)pid, WEXITSTATUS(status), g_dir, n, conf);
		}
	}
	unsigned running = 0;
	for (unsigned n = 1; n <= o->nodes; n++)
		running += g_kids[n].running;
	return running;
}

static void stop_all(const struct up_opts *o)
{
	for (unsigned n = 1; n <= o->nodes; n++)
		if (g_kids[n].running)
			kill(g_kids[n].pid, SIGTERM);
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (reap(o, false) == 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms > CLUSTER_STOP_MS) {
			for (unsigned n = 1; n <= o->nodes; n++)
				if (g_kids[n].running) {
					fprintf(stderr, "node %u did not stop within %d s: killing it\n", n, CLUSTER_STOP_MS / 1000);
					kill(g_kids[n].pid, SIGKILL);
				}
		}
		usleep(20000);
	}
}

/* A node is ready when it answers DYN.STATUS with every peer up. */
static bool node_ready(const struct up_opts *o, unsigned n)
{
	char addr[32], err[128];
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", o->base_port + n - 1);
	int fd;
	if (cli_connect(addr, 1000, &fd, err, sizeof(err)))
		return false;
	const char *cmd[] = {"DYN.STATUS"};
	struct rv *r = NULL;
	bool ok = cli_call(fd, 1, cmd, 2000, &r, err, sizeof(err)) == 0 && r->type == '*';
	close(fd);
	const struct rv *m = ok ? rv_get(r, "members") : NULL;
	ok = m && m->type == '*' && m->n == o->nodes;
	for (size_t i = 0; ok && i < m->n; i++) {
		const char *s = rv_str(&m->el[i], "state");
		ok = !strcmp(s, "up") || !strcmp(s, "self");
	}
	rv_free(r);
	return ok;
}

static int wait_ready(const struct up_opts *o, const sigset_t *sigs)
{
	bool ready[CLUSTER_NODES_MAX + 1] = {0};
	for (unsigned waited = 0, left = o->nodes; left > 0; waited += 100) {
		struct timespec ts = {.tv_nsec = 100 * 1000000};
		int sig = sigtimedwait(sigs, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM)
			return -EINTR;
		if (reap(o, true) < o->nodes) {
			fprintf(stderr, "dynvme cluster up: a node exited during start (see its log in %s): stopping\n",
				g_dir);
			return -ECHILD;
		}
		for (unsigned n = 1; n <= o->nodes; n++)
			if (!ready[n] && node_ready(o, n)) {
				ready[n] = true;
				left--;
			}
		if (waited > CLUSTER_READY_MS) {
			fprintf(stderr, "dynvme cluster up: nodes not connected after %d s (see the logs in %s): stopping\n",
				CLUSTER_READY_MS / 1000, g_dir);
			return -ETIMEDOUT;
		}
	}
	return 0;
}

static void print_ready(const struct up_opts *o)
{
	unsigned p = o->base_port;
	printf("dynvme cluster up: %u nodes ready (N=3 R=2 W=2, N capped by the nodes)\n", o->nodes);
	for (unsigned n = 1; n <= o->nodes; n++)
		printf("  node %-2u RESP 127.0.0.1:%-5u  HTTP 127.0.0.1:%-5u  internode 127.0.0.1:%-5u  pid %d\n", n,
		       p + n - 1, p + 1000 + n - 1, p + 10000 + n - 1, (int)g_kids[n].pid);
	printf("connect to any node:     redis-cli -p %u     (SELECT 1: the last-write-wins keyspace)\n"
	       "Dynamo API:              redis-cli -p %u DYN.GET key ; DYN.PUT key <context> value\n"
	       "cluster view:            dynvme admin --node 127.0.0.1:%u status   (or ring)\n"
	       "metrics:                 curl -s 127.0.0.1:%u/metrics\n"
	       "configs, data and logs:  %s/nodeN/  (restart a node by hand: dynvme serve --config %s/nodeN/dynvme.conf)\n"
	       "Ctrl-C stops every node.\n",
	       p, p, p, p + 1000, g_dir, g_dir);
}

static int run(struct up_opts *o)
{
	char self[PATH_MAX];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl <= 0) {
		fprintf(stderr, "dynvme cluster up: cannot find its own binary\n");
		return 1;
	}
	self[sl] = '\0';
	if (check_ports(o))
		return 1;
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGCHLD);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	for (unsigned n = 1; n <= o->nodes; n++) {
		pid_t pid = spawn(n, self);
		if (pid < 0) {
			fprintf(stderr, "dynvme cluster up: fork: %s\n", strerror(errno));
			stop_all(o);
			return 1;
		}
		g_kids[n] = (struct child){.pid = pid, .running = true};
	}
	int err = wait_ready(o, &sigs);
	if (err) {
		stop_all(o);
		return err == -EINTR ? 0 : 1;
	}
	print_ready(o);
	for (;;) {
		int sig = sigwaitinfo(&sigs, NULL);
		if (sig == SIGINT || sig == SIGTERM) {
			printf("stopping %u node(s)...\n", reap(o, true));
			stop_all(o);
			printf("cluster stopped\n");
			return 0;
		}
		if (sig == SIGCHLD && reap(o, true) == 0) {
			printf("every node has exited\n");
			return 1;
		}
	}
}

int cli_cluster(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(cluster_usage, stdout);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "up")) {
		fputs(cluster_usage, stderr);
		return 2;
	}
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(cluster_usage, stdout);
			return 0;
		}
	struct up_opts o;
	if (parse_opts(argc - 2, argv + 2, &o))
		return 2;
	if (o.base_port + 10000 + o.nodes - 1 > 65535) {
		fprintf(stderr, "dynvme cluster up: --base-port %u leaves no room for internode port %u\n", o.base_port,
			o.base_port + 10000 + o.nodes - 1);
		return 2;
	}
	int err = mkdir_p(o.data);
	if (err || !realpath(o.data, g_dir)) {
		fprintf(stderr, "dynvme cluster up: cannot create %s: %s\n", o.data, strerror(err ? -err : errno));
		return 1;
	}
	if (strlen(g_dir) > 200) {
		fprintf(stderr, "dynvme cluster up: %s is too long a path (the configs hold paths of at most 255 bytes)\n",
			g_dir);
		return 2;
	}
	char info[CPATH];
	snprintf(info, sizeof(info), "%s/cluster.info", g_dir);
	err = exists(info) ? reuse_cluster(&o, info) : create_cluster(&o);
	if (err)
		return 1;
	return run(&o);
}
