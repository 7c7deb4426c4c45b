/* main.c - the dynvme binary: one subcommand per job. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char usage[] =
	"usage: dynvme <command> [options]\n"
	"\n"
	"commands:\n"
	"  serve [...]         run a node: RESP clients, HTTP metrics (dynvme serve --help);\n"
	"                      a cluster member when its config sets node-id\n"
	"  cluster up [...]    a local cluster of K nodes on loopback, in the foreground\n"
	"                      (dynvme cluster up --help)\n"
	"  admin [...] status|ring  a node's view of the cluster, the partition table\n"
	"                      (dynvme admin --help)\n"
	"  check PATH          verify a data file or block device offline (every record,\n"
	"                      every checksum, zone indexes against records, index\n"
	"                      entries); exit 0 clean, 1 damage found, 2 cannot check\n"
	"  bench engine [...]  storage engine benchmark (dynvme bench engine --help)\n"
	"  help                this text\n";

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines show up at once, even in a pipe */
	/* libsodium picks its CPU-specific code here, once, before any thread
	 * (wire.h, dvv.h). */
	if (sodium_init() < 0) {
		fprintf(stderr, "dynvme: libsodium cannot initialise\n");
		return 1;
	}
	if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "serve"))
		return cli_serve(argc - 1, argv + 1);
	if (!strcmp(argv[1], "check"))
		return cli_check(argc - 1, argv + 1);
	if (!strcmp(argv[1], "cluster"))
		return cli_cluster(argc - 1, argv + 1);
	if (!strcmp(argv[1], "admin"))
		return cli_admin(argc - 1, argv + 1);
	if (!strcmp(argv[1], "bench"))
		return cli_bench(argc - 1, argv + 1);
	fprintf(stderr, "dynvme: unknown command '%s'\n\n%s", argv[1], usage);
	return 2;
}
