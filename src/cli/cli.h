/* cli.h - subcommands of the dynvme binary. Each returns the exit code. */
#ifndef DV_CLI_H
#define DV_CLI_H

int cli_check(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_cluster(int argc, char **argv);
int cli_admin(int argc, char **argv);

/* Parse a size like 4096, 64K, 256M, 4G. 0 on success. */
int cli_parse_size(const char *s, unsigned long long *out);

#endif
