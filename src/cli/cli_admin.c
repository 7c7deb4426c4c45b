/* cli_admin.c - dynvme admin --node HOST:PORT [--password PW] status|ring:
 * a node's view of the cluster (DYN.STATUS) and the partition table
 * (DYN.RING), printed for people. Exit 0, 1 when the node cannot be
 * reached or answers with an error (not in cluster mode, wrong password),
 * 2 for bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_resp.h"

#define ADMIN_TIMEOUT_MS 10000u

static const char admin_usage[] =
	"usage: dynvme admin [--node HOST:PORT] [--password PW] status|ring\n"
	"\n"
	"  status   the node's view: id, cluster, incarnation, ring version, members with their\n"
	"           addresses, connection state and the partitions each owns and replicates,\n"
	"           keyspaces, request and internode counters (DYN.STATUS)\n"
	"  ring     the partition table: each partition's hash range, owner and preference list\n"
	"           (DYN.RING)\n"
	"\n"
	"--node defaults to 127.0.0.1:6379; --password (or DYNVME_PASSWORD) is sent with AUTH.\n";

static void print_members(const struct rv *m)
{
	printf("\nmembers:\n  %4s  %-22s %-22s %-10s %6s %10s %12s %12s %8s %8s\n", "id", "internode", "client", "state",
	       "owned", "replicated", "bytes in", "bytes out", "sessions", "refused");
	for (size_t i = 0; m && m->type == '*' && i < m->n; i++) {
		const struct rv *e = &m->el[i];
		printf("  %4lld  %-22s %-22s %-10s %6lld %10lld %12lld %12lld %8lld %8lld\n",
		       (long long)rv_int(e, "id", 0), rv_str(e, "internode"), *rv_str(e, "client") ? rv_str(e, "client") : "-",
		       rv_str(e, "state"), (long long)rv_int(e, "owned", 0), (long long)rv_int(e, "replicated", 0),
		       (long long)rv_int(e, "bytes_in", 0), (long long)rv_int(e, "bytes_out", 0),
		       (long long)rv_int(e, "sessions", 0), (long long)rv_int(e, "refusals", 0));
	}
}

static void print_keyspaces(const struct rv *k)
{
	printf("\nkeyspaces (SELECT n):\n  %4s  %-16s %2s %2s %2s  %-9s %s\n", "db", "name", "n", "r", "w", "policy",
	       "siblings-max");
	for (size_t i = 0; k && k->type == '*' && i < k->n; i++) {
		const struct rv *e = &k->el[i];
		printf("  %4lld  %-16s %2lld %2lld %2lld  %-9s %lld\n", (long long)rv_int(e, "id", 0), rv_str(e, "name"),
		       (long long)rv_int(e, "n", 0), (long long)rv_int(e, "r", 0), (long long)rv_int(e, "w", 0),
		       rv_str(e, "policy"), (long long)rv_int(e, "siblings_max", 0));
	}
}

static void print_status(const struct rv *s)
{
	printf("node %lld of cluster %s: incarnation %s (actor %s)\n", (long long)rv_int(s, "node_id", 0),
	       rv_str(s, "cluster_id"), rv_str(s, "incarnation"), rv_str(s, "actor"));
	printf("ring version %lld (digest %s): %lld partitions over %lld nodes, preference lists of %lld\n",
	       (long long)rv_int(s, "ring_version", 0), rv_str(s, "ring_digest"), (long long)rv_int(s, "partitions", 0),
	       (long long)rv_int(s, "nodes", 0), (long long)rv_int(s, "replicas", 0));
	print_members(rv_get(s, "members"));
	print_keyspaces(rv_get(s, "keyspaces"));
	const struct rv *st = rv_get(s, "stats");
	printf("\ncounters:\n");
	for (size_t i = 0; st && st->type == '*' && i + 1 < st->n; i += 2)
		printf("  %-30s %lld\n", st->el[i].s ? st->el[i].s : "?", (long long)st->el[i + 1].i);
}

static void print_ring(const struct rv *r)
{
	const struct rv *nodes = rv_get(r, "nodes");
	printf("ring version %lld: %lld partitions, nodes", (long long)rv_int(r, "version", 0),
	       (long long)rv_int(r, "partitions", 0));
	for (size_t i = 0; nodes && nodes->type == '*' && i < nodes->n; i++)
		printf(" %lld", (long long)nodes->el[i].i);
	printf(", preference lists of %lld\n\n%9s  %-18s  %-18s  %5s  %s\n", (long long)rv_int(r, "replicas", 0),
	       "partition", "first hash", "last hash", "owner", "preference list");
	const struct rv *t = rv_get(r, "table");
	for (size_t i = 0; t && t->type == '*' && i < t->n; i++) {
		const struct rv *e = &t->el[i];
		if (e->type != '*' || e->n != 5 || e->el[4].type != '*')
			continue;
		printf("%9lld  %-18s  %-18s  %5lld ", (long long)e->el[0].i, e->el[1].s ? e->el[1].s : "?",
		       e->el[2].s ? e->el[2].s : "?", (long long)e->el[3].i);
		for (size_t k = 0; k < e->el[4].n; k++)
			printf(" %lld", (long long)e->el[4].el[k].i);
		printf("\n");
	}
}

int cli_admin(int argc, char **argv)
{
	const char *node = "127.0.0.1:6379", *pw = getenv("DYNVME_PASSWORD"), *what = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(admin_usage, stdout);
			return 0;
		}
		if ((!strcmp(argv[i], "--node") || !strcmp(argv[i], "--password")) && i + 1 < argc) {
			*(argv[i][2] == 'n' ? &node : &pw) = argv[i + 1];
			i++;
		} else if (!what && (!strcmp(argv[i], "status") || !strcmp(argv[i], "ring"))) {
			what = argv[i];
		} else {
			fprintf(stderr, "dynvme admin: unexpected '%s'\n\n%s", argv[i], admin_usage);
			return 2;
		}
	}
	if (!what) {
		fprintf(stderr, "%s", admin_usage);
		return 2;
	}
	char err[256];
	int fd;
	if (cli_connect(node, ADMIN_TIMEOUT_MS, &fd, err, sizeof(err))) {
		fprintf(stderr, "dynvme admin: %s (is a dynvme node running there?)\n", err);
		return 1;
	}
	struct rv *r = NULL;
	int rc = 0;
	if (pw && *pw) {
		const char *a[] = {"AUTH", pw};
		rc = cli_call(fd, 2, a, ADMIN_TIMEOUT_MS, &r, err, sizeof(err));
		if (!rc && r->type == '-') {
			fprintf(stderr, "dynvme admin: %s: AUTH: %s\n", node, r->s);
			rc = 1;
		}
		rv_free(r);
		r = NULL;
	}
	const char *cmd[] = {!strcmp(what, "status") ? "DYN.STATUS" : "DYN.RING"};
	if (!rc)
		rc = cli_call(fd, 1, cmd, ADMIN_TIMEOUT_MS, &r, err, sizeof(err));
	close(fd);
	if (rc < 0)
		fprintf(stderr, "dynvme admin: %s: %s\n", node, err);
	if (rc)
		return 1;
	if (r->type == '-') {
		fprintf(stderr, "dynvme admin: %s: %s%s\n", node, r->s,
			strstr(r->s, "unknown command") ? " (not a dynvme node in cluster mode?)" : "");
		rv_free(r);
		return 1;
	}
	if (r->type != '*') {
		fprintf(stderr, "dynvme admin: %s: unexpected reply\n", node);
		rv_free(r);
		return 1;
	}
	if (!strcmp(what, "status"))
		print_status(r);
	else
		print_ring(r);
	rv_free(r);
	return 0;
}
