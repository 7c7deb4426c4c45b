/* cli_serve.c - dynvme serve: flags and config file, then server_run(). */
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "cli/cli.h"
#include "server/config.h"
#include "server/server.h"

static const char serve_usage[] =
	"usage: dynvme serve [--config FILE] [--DIRECTIVE VALUE ...]\n"
	"\n"
	"Runs one dynvme node: RESP (Redis protocol) clients on --port, Prometheus\n"
	"/metrics, /health and /status over HTTP on --http-port. Every write is\n"
	"acknowledged only once durable on the data file or device.\n"
	"\n"
	"options (config file directives have the same names without the dashes;\n"
	"flags override the file):\n"
	"  --config FILE             directives, one per line: 'port 6380', '# comment'\n"
	"  --bind ADDR               listen address (127.0.0.1); 0.0.0.0 or :: for all\n"
	"  --port N                  RESP port (6379); 0 picks a free one (threads 1)\n"
	"  --http-port N             HTTP port (7379); 0 turns HTTP off\n"
	"  --data PATH               data file or block device (./data/dynvme.img)\n"
	"  --size BYTES              size of a data file created at start (1G)\n"
	"  --zone-bytes BYTES        zone size when formatting (64M, or the device's)\n"
	"  --threads N               network threads, 1..16 (1 on 2 CPUs, else CPUs/2 up to 4)\n"
	"  --requirepass PASSWORD    clients must AUTH with it\n"
	"  --protected-mode yes|no   without a password, refuse clients not on loopback (yes)\n"
	"  --maxclients N            client connections (10000)\n"
	"  --timeout SECONDS         close clients idle this long; 0 never (0)\n"
	"  --auth-timeout SECONDS    close clients not authenticated idle this long; 0 never (10)\n"
	"  --request-timeout SECONDS close clients whose request stays incomplete (30)\n"
	"  --max-request-bytes BYTES one request, all arguments (4M)\n"
	"  --max-reply-bytes BYTES   one reply, and what one client's commands hold (64M)\n"
	"  --max-pipeline N          commands of one client in flight (1024)\n"
	"  --cache-bytes BYTES       RAM for recently written and read values (512M); 0 off\n"
	"  --write-batches N         durable group-commit writes in flight, 1..4 (1)\n"
	"  --log-level LEVEL         debug, info, warn or error (info)\n"
	"\n"
	"cluster mode (on when node-id is set; dynvme cluster up writes these):\n"
	"  --node-id N               this node's id, 1..65535\n"
	"  --cluster-id HEX16        the cluster's id, 16 hex digits, the same on every member\n"
	"  --cluster-secret-file PATH  the shared secret (at least 16 bytes; refused when\n"
	"                            group or others can read it)\n"
	"  --internode-bind ADDR     address peers connect to (127.0.0.1)\n"
	"  --internode-port P        port peers connect to\n"
	"  --peer \"ID HOST:PORT [CLIENT_HOST:PORT]\"  another member and its internode\n"
	"                            address (repeatable; one for every other member)\n"
	"  --partitions Q            partitions of the ring, a power of two (1024)\n"
	"  --keyspace \"ID NAME [n=3] [r=2] [w=2] [policy=siblings|lww] [siblings-max=16]\"\n"
	"                            a keyspace, SELECT ID (repeatable); with none: 0 default\n"
	"                            (siblings) and 1 lww, N=3 R=2 W=2 (N capped by the nodes)\n"
	"  --cluster-timeout-ms MS   a request's quorum deadline (5000)\n"
	"  --cluster-checked-sets yes|no  plain SETs through a replica skip their read (no):\n"
	"                            fewer messages; the first one at a node to lose a race\n"
	"                            with writes of its key through other nodes answers\n"
	"                            '-TIMEOUT ... may or may not have been applied'\n"
	"\n"
	"SIGTERM or SIGINT: stop accepting, finish the commands in flight, exit 0.\n"
	"See man dynvme (docs/dynvme.1).\n";

int cli_serve(int argc, char **argv)
{
	struct server_config cfg;
	config_defaults(&cfg);
	char err[CONFIG_ERR_MAX];
	/* The config file first, wherever --config is, so flags override it. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(serve_usage, stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--config")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "dynvme serve: --config needs a file\n");
				return 2;
			}
			if (config_load_file(&cfg, argv[i + 1], err, sizeof(err))) {
				fprintf(stderr, "dynvme serve: %s\n", err);
				return 2;
			}
		}
	}
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) || i + 1 >= argc) {
			fprintf(stderr, "dynvme serve: expected --DIRECTIVE VALUE, got '%s'\n\n%s", a, serve_usage);
			return 2;
		}
		if (!strcmp(a, "--config"))
			continue;
		const char *name = a + 2;
		if (!strcmp(name, "password"))
			name = "requirepass";
		if (config_set(&cfg, name, argv[i + 1], err, sizeof(err))) {
			fprintf(stderr, "dynvme serve: --%s\n", err);
			return 2;
		}
	}
	if (config_validate(&cfg, err, sizeof(err))) {
		fprintf(stderr, "dynvme serve: %s\n", err);
		return 2;
	}
	int rc = server_run(&cfg);
	if (rc) {
		fprintf(stderr, "dynvme serve: %s\n", dv_strerror(rc));
		return 1;
	}
	return 0;
}
