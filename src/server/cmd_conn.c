/* cmd_conn.c - connection commands: PING, ECHO, AUTH, HELLO, SELECT, QUIT,
 * CLIENT, with Redis 7's replies (networking.c, acl.c).
 *
 * Users: one, "default", as Redis's default user. With no password it is
 * "nopass": AUTH default <anything> and HELLO ... AUTH default <anything>
 * succeed, AUTH <password> alone keeps Redis's error; with requirepass the
 * password must match (compared in constant time, failures logged).
 * CLIENT sees the connections of this connection's network thread (each
 * thread owns its own; with threads 1, the default on small machines, all
 * of them): LIST, KILL and the others act on those.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/cmd_int.h"
#include "server/log.h"
#include "server/server.h"

static bool secret_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	/* Time independent of where the first difference is. */
	unsigned char diff = alen != blen;
	size_t n = alen < blen ? alen : blen;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

static void run_ping(CMD_RUN_ARGS)
{
	if (argc > 2)
		resp_add_error(rb, "ERR wrong number of arguments for 'ping' command");
	else if (argc == 2)
		resp_add_bulk(rb, argv[1].ptr, argv[1].len);
	else
		resp_add_simple(rb, "PONG");
}

static void run_echo(CMD_RUN_ARGS) { resp_add_bulk(rb, argv[1].ptr, argv[1].len); }

/* ACLAuthenticateUser for the one user: 0 authenticated, or the error sent. */
static int authenticate(struct conn *c, const struct resp_arg *user, const struct resp_arg *pass, struct resp_buf *rb)
{
	const char *want = c->w->cfg->requirepass;
	bool ok = resp_arg_is(user, "default") && (!want[0] || secret_equal(pass->ptr, pass->len, want, strlen(want)));
	if (!ok) {
		if (want[0])
			log_warn("authentication failed", "id=%llu addr=%s", (unsigned long long)c->id, c->addr);
		resp_add_error(rb, "WRONGPASS invalid username-password pair or user is disabled.");
		return -EPERM;
	}
	c->authed = true;
	return 0;
}

static void run_auth(CMD_RUN_ARGS)
{
	static const struct resp_arg default_user = {.ptr = (char *)"default", .len = 7};
	if (argc > 3) {
		resp_add_error(rb, "ERR syntax error");
		return;
	}
	if (argc == 2 && !c->w->cfg->requirepass[0]) {
		resp_add_error(rb, "ERR AUTH <password> called without any password configured for the default user. "
				   "Are you sure your configuration is correct?");
		return;
	}
	if (authenticate(c, argc == 3 ? &argv[1] : &default_user, &argv[argc - 1], rb) == 0)
		resp_add_simple(rb, "OK");
}

static bool valid_client_name(const struct resp_arg *a, struct resp_buf *rb)
{
	for (uint32_t i = 0; i < a->len; i++) {
		unsigned char ch = (unsigned char)a->ptr[i];
		if (ch < '!' || ch > '~') {
			resp_add_error(rb, "ERR Client names cannot contain spaces, newlines or special characters.");
			return false;
		}
	}
	if (a->len > NET_NAME_BYTES_MAX) {
		resp_add_errorf(rb, "ERR client name longer than %u bytes", NET_NAME_BYTES_MAX);
		return false;
	}
	return true;
}

static void set_name(struct conn *c, const struct resp_arg *a)
{
	memcpy(c->name, a->ptr, a->len);
	c->name[a->len] = '\0';
}

static void add_kv_str(struct resp_buf *rb, const char *k, const char *v)
{
	resp_add_bulk_str(rb, k);
	resp_add_bulk_str(rb, v);
}

static void reply_hello(struct conn *c, struct resp_buf *rb)
{
	resp_add_map(rb, 7, c->proto);
	add_kv_str(rb, "server", "redis");
	add_kv_str(rb, "version", DYNVME_REDIS_COMPAT_VERSION);
	resp_add_bulk_str(rb, "proto");
	resp_add_int(rb, c->proto);
	resp_add_bulk_str(rb, "id");
	resp_add_int(rb, (int64_t)c->id);
	add_kv_str(rb, "mode", "standalone");
	add_kv_str(rb, "role", "master");
	resp_add_bulk_str(rb, "modules");
	resp_add_array(rb, 0);
}

/* HELLO [protover [AUTH username password] [SETNAME clientname]]: the
 * options are read first, then AUTH, then the name (helloCommand). */
static void run_hello(CMD_RUN_ARGS)
{
	int64_t proto = c->proto;
	uint32_t i = 1;
	if (argc >= 2) {
		if (resp_arg_i64(&argv[1], &proto)) {
			resp_add_error(rb, "ERR Protocol version is not an integer or out of range");
			return;
		}
		if (proto != 2 && proto != 3) {
			resp_add_error(rb, "NOPROTO unsupported protocol version");
			return;
		}
		i = 2;
	}
	const struct resp_arg *name = NULL, *user = NULL, *pass = NULL;
	for (; i < argc; i++) {
		uint32_t more = argc - 1 - i;
		if (resp_arg_is(&argv[i], "AUTH") && more >= 2) {
			user = &argv[i + 1];
			pass = &argv[i + 2];
			i += 2;
		} else if (resp_arg_is(&argv[i], "SETNAME") && more) {
			name = &argv[++i];
		} else {
			/* the whole option, as Redis (up to a NUL: a C string there too) */
			resp_add_errorf(rb, "ERR Syntax error in HELLO option '%.*s'", (int)argv[i].len, argv[i].ptr);
			return;
		}
	}
	if (user && authenticate(c, user, pass, rb))
		return;
	if (!c->authed) {
		resp_add_error(rb, "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
				   "HELLO AUTH <user> <pass> option can be used to authenticate the client and "
				   "select the RESP protocol version at the same time");
		return;
	}
	if (name && !valid_client_name(name, rb))
		return;
	if (name)
		set_name(c, name);
	c->proto = (uint8_t)proto;
	reply_hello(c, rb);
}

void cmd_run_select(CMD_RUN_ARGS)
{
	int64_t db;
	if (!cmd_arg_int(&argv[1], &db, rb))
		return;
	if (db != 0)
		resp_add_error(rb, "ERR DB index is out of range");
	else
		resp_add_simple(rb, "OK");
}

static void run_quit(CMD_RUN_ARGS)
{
	resp_add_simple(rb, "OK");
	c->closing = true;
	c->w->maybe_reap = true;
	c->eof = true;
}

/* ---- CLIENT ---- */

static void client_info_line(struct conn *x, char *out, size_t len)
{
	uint64_t now = x->w->now_ms;
	snprintf(out, len,
		 "id=%llu addr=%s laddr=%s fd=%d name=%s age=%llu idle=%llu flags=N db=0 sub=0 psub=0 ssub=0 "
		 "multi=-1 qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=0 obl=0 oll=%u omem=%zu tot-mem=%zu "
		 "events=r cmd=%s user=default redir=-1 resp=%u thread=%u\n",
		 (unsigned long long)x->id, x->addr, x->laddr, x->fd, x->name,
		 (unsigned long long)(now - x->created_ms) / 1000, (unsigned long long)(now - x->active_ms) / 1000,
		 x->in_len - x->in_start, x->in_cap - x->in_len, x->pending, x->out.len + x->sending.len,
		 x->in_cap + x->out.cap + x->sending.cap + sizeof(*x), x->last_cmd, x->proto, x->w->idx);
}

static bool arg_eq_str(const struct resp_arg *a, const char *s)
{
	return a->len == strlen(s) && memcmp(a->ptr, s, a->len) == 0;
}

/* Redis's client types: every client here is "normal". -1 unknown. */
static int client_type(const struct resp_arg *a)
{
	if (resp_arg_is(a, "normal"))
		return 0;
	if (resp_arg_is(a, "slave") || resp_arg_is(a, "replica") || resp_arg_is(a, "master") ||
	    resp_arg_is(a, "pubsub"))
		return 1;
	return -1;
}

static void client_list(struct conn *c, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	char line[768];
	int type = 0;
	int64_t ids[64];
	uint32_t nids = 0;
	if (argc == 4 && resp_arg_is(&argv[2], "TYPE")) {
		type = client_type(&argv[3]);
		if (type < 0) {
			resp_add_errorf(rb, "ERR Unknown client type '%.*s'", (int)(argv[3].len < 64 ? argv[3].len : 64),
					argv[3].ptr);
			return;
		}
	} else if (argc > 3 && resp_arg_is(&argv[2], "ID")) {
		for (uint32_t j = 3; j < argc && nids < 64; j++) {
			if (resp_arg_i64(&argv[j], &ids[nids++])) {
				resp_add_error(rb, "ERR Invalid client ID");
				return;
			}
		}
	} else if (argc != 2) {
		resp_add_error(rb, "ERR syntax error");
		return;
	}
	struct resp_buf all;
	resp_buf_init(&all);
	for (struct conn *x = c->w->conns; x && type == 0; x = x->next) {
		bool want = nids == 0;
		for (uint32_t j = 0; j < nids && !want; j++)
			want = ids[j] == (int64_t)x->id;
		if (!want || x->dead)
			continue;
		client_info_line(x, line, sizeof(line));
		resp_add_raw(&all, line, strlen(line));
	}
	resp_add_verbatim(rb, all.data ? all.data : "", all.len, c->proto);
	resp_buf_free(&all);
}

/* CLIENT KILL addr | CLIENT KILL [ID id] [ADDR addr] [LADDR addr] [TYPE t]
 * [USER user] [SKIPME yes|no]: the old form answers OK or "No such
 * client", the new one the number killed. */
static void client_kill(struct conn *c, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	const struct resp_arg *addr = NULL, *laddr = NULL;
	int64_t id = 0;
	int type = -1;
	bool skipme = true, old = argc == 3;
	if (old) {
		addr = &argv[2];
		skipme = false; /* with the old form a client may kill itself */
	}
	for (uint32_t i = 2; !old && i < argc; i += 2) {
		bool more = i + 1 < argc;
		const struct resp_arg *v = &argv[i + 1];
		if (more && resp_arg_is(&argv[i], "ID")) {
			if (resp_arg_i64(v, &id) || id < 1) {
				resp_add_error(rb, "ERR client-id should be greater than 0");
				return;
			}
		} else if (more && resp_arg_is(&argv[i], "TYPE")) {
			if ((type = client_type(v)) < 0) {
				resp_add_errorf(rb, "ERR Unknown client type '%.*s'", (int)(v->len < 64 ? v->len : 64), v->ptr);
				return;
			}
		} else if (more && resp_arg_is(&argv[i], "ADDR")) {
			addr = v;
		} else if (more && resp_arg_is(&argv[i], "LADDR")) {
			laddr = v;
		} else if (more && resp_arg_is(&argv[i], "USER")) {
			if (!arg_eq_str(v, "default")) {
				resp_add_errorf(rb, "ERR No such user '%.*s'", (int)(v->len < 64 ? v->len : 64), v->ptr);
				return;
			}
		} else if (more && resp_arg_is(&argv[i], "SKIPME")) {
			if (resp_arg_is(v, "yes"))
				skipme = true;
			else if (resp_arg_is(v, "no"))
				skipme = false;
			else {
				resp_add_error(rb, "ERR syntax error");
				return;
			}
		} else {
			resp_add_error(rb, "ERR syntax error");
			return;
		}
	}
	int64_t killed = 0;
	bool self = false;
	for (struct conn *x = c->w->conns; x; x = x->next) {
		if (x->dead || (addr && !arg_eq_str(addr, x->addr)) || (laddr && !arg_eq_str(laddr, x->laddr)) ||
		    (type > 0) || (id && (uint64_t)id != x->id) || (x == c && skipme))
			continue;
		if (x == c)
			self = true; /* closed once this reply is out */
		else
			conn_close(x, "CLIENT KILL");
		killed++;
	}
	if (old && killed == 0)
		resp_add_error(rb, "ERR No such client");
	else if (old)
		resp_add_simple(rb, "OK");
	else
		resp_add_int(rb, killed);
	if (self) {
		c->closing = true;
		c->w->maybe_reap = true;
		c->eof = true;
	}
}

/* CLIENT REPLY ON|OFF|SKIP: OFF and SKIP are not answered (conn.c keeps
 * the mode: every later reply dropped, or the next one). */
static void client_reply(struct conn *c, const struct resp_arg *mode, struct resp_buf *rb)
{
	if (resp_arg_is(mode, "ON")) {
		c->reply_mode = CONN_REPLY_ON;
		resp_add_simple(rb, "OK");
	} else if (resp_arg_is(mode, "OFF")) {
		c->reply_mode = CONN_REPLY_OFF;
	} else if (resp_arg_is(mode, "SKIP")) {
		if (c->reply_mode != CONN_REPLY_OFF)
			c->reply_mode = CONN_REPLY_SKIP;
	} else {
		resp_add_error(rb, "ERR syntax error");
	}
}

enum client_sub {
	CL_ID, CL_INFO, CL_LIST, CL_GETNAME, CL_SETNAME, CL_KILL, CL_REPLY, CL_HELP, CL_NOEVICT, CL_GETREDIR,
	CL_TRACKINGINFO, CL_UNBLOCK, CL_UNPAUSE, CL_PAUSE, CL_TRACKING, CL_CACHING, CL_SETINFO, CL_NOTOUCH,
};
static const struct cmd_sub client_subs[] = {
	{"ID", 2}, {"INFO", 2}, {"LIST", -2}, {"GETNAME", 2}, {"SETNAME", 3}, {"KILL", -3}, {"REPLY", 3},
	{"HELP", 2}, {"NO-EVICT", 3}, {"GETREDIR", 2}, {"TRACKINGINFO", 2}, {"UNBLOCK", -3}, {"UNPAUSE", 2},
	{"PAUSE", -3}, {"TRACKING", -3}, {"CACHING", 3}, {"SETINFO", 4}, {"NO-TOUCH", 3},
};
const struct cmd_container cmd_container_client = {"client", client_subs, sizeof(client_subs) / sizeof(client_subs[0])};
static const char *const client_help[] = {
	"CACHING (YES|NO)",
	"    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
	"GETREDIR",
	"    Return the client ID we are redirecting to when tracking is enabled.",
	"GETNAME",
	"    Return the name of the current connection.",
	"ID",
	"    Return the ID of the current connection.",
	"INFO",
	"    Return information about the current client connection.",
	"KILL <ip:port>",
	"    Kill connection made from <ip:port>.",
	"KILL <option> <value> [<option> <value> [...]]",
	"    Kill connections. Options are:",
	"    * ADDR (<ip:port>|<unixsocket>:0)",
	"      Kill connections made from the specified address",
	"    * LADDR (<ip:port>|<unixsocket>:0)",
	"      Kill connections made to specified local address",
	"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
	"      Kill connections by type.",
	"    * USER <username>",
	"      Kill connections authenticated by <username>.",
	"    * SKIPME (YES|NO)",
	"      Skip killing current connection (default: yes).",
	"LIST [options ...]",
	"    Return information about client connections. Options:",
	"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
	"      Return clients of specified type.",
	"UNPAUSE",
	"    Stop the current client pause, resuming traffic.",
	"PAUSE <timeout> [WRITE|ALL]",
	"    Suspend all, or just write, clients for <timeout> milliseconds.",
	"REPLY (ON|OFF|SKIP)",
	"    Control the replies sent to the current connection.",
	"SETNAME <name>",
	"    Assign the name <name> to the current connection.",
	"UNBLOCK <clientid> [TIMEOUT|ERROR]",
	"    Unblock the specified blocked client.",
	"TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
	"         [OPTIN] [OPTOUT] [NOLOOP]",
	"    Control server assisted client side caching.",
	"TRACKINGINFO",
	"    Report tracking status for the current connection.",
	"NO-EVICT (ON|OFF)",
	"    Protect current client connection from eviction.",
	NULL,
};

/* CLIENT PAUSE timeout [WRITE|ALL]: Redis's checks, in its order (the
 * mode, then the timeout: getTimeoutFromObjectOrReply), then a refusal:
 * dynvme cannot pause its clients. */
static void client_pause(struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	int64_t ms;
	if (argc > 4)
		cmd_reply_sub_syntax(argv, rb);
	else if (argc == 4 && !resp_arg_is(&argv[3], "WRITE") && !resp_arg_is(&argv[3], "ALL"))
		resp_add_error(rb, "ERR CLIENT PAUSE mode must be WRITE or ALL");
	else if (resp_arg_i64(&argv[2], &ms))
		resp_add_error(rb, "ERR timeout is not an integer or out of range");
	else if (ms < 0)
		resp_add_error(rb, "ERR timeout is negative");
	else
		resp_add_error(rb, "ERR CLIENT PAUSE is not supported by dynvme");
}

/* CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p ...] [OPTIN]
 * [OPTOUT] [NOLOOP]: the options parsed as Redis parses them (a REDIRECT
 * id must be a client of this connection's thread: the clients CLIENT LIST
 * shows), then OFF is +OK (tracking is never on) and ON a refusal. */
static void client_tracking(struct conn *c, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	int64_t redir = 0;
	for (uint32_t j = 3; j < argc; j++) {
		bool more = j + 1 < argc;
		if (more && resp_arg_is(&argv[j], "REDIRECT")) {
			j++;
			if (redir != 0) {
				resp_add_error(rb, "ERR A client can only redirect to a single other client");
				return;
			}
			if (!cmd_arg_i64(&argv[j], &redir, rb))
				return;
			const struct conn *x = c->w->conns;
			while (x && (x->dead || x->id != (uint64_t)redir))
				x = x->next;
			if (!x) {
				resp_add_error(rb, "ERR The client ID you want redirect to does not exist");
				return;
			}
		} else if (more && resp_arg_is(&argv[j], "PREFIX")) {
			j++;
		} else if (!resp_arg_is(&argv[j], "BCAST") && !resp_arg_is(&argv[j], "OPTIN") &&
			   !resp_arg_is(&argv[j], "OPTOUT") && !resp_arg_is(&argv[j], "NOLOOP")) {
			resp_add_error(rb, "ERR syntax error");
			return;
		}
	}
	if (resp_arg_is(&argv[2], "OFF"))
		resp_add_simple(rb, "OK");
	else if (resp_arg_is(&argv[2], "ON"))
		resp_add_error(rb, "ERR CLIENT TRACKING is not supported by dynvme (no client side caching)");
	else
		resp_add_error(rb, "ERR syntax error");
}

/* The subcommands of features dynvme has not (tracking, pause): what
 * Redis answers with the feature off, or a clear refusal to turn it on. */
static void client_off_features(struct conn *c, int sub, struct resp_arg *argv, uint32_t argc, struct resp_buf *rb)
{
	switch (sub) {
	case CL_GETREDIR: resp_add_int(rb, -1); break;
	case CL_TRACKINGINFO:
		resp_add_map(rb, 3, c->proto);
		resp_add_bulk_str(rb, "flags");
		resp_add_array(rb, 1);
		resp_add_bulk_str(rb, "off");
		resp_add_bulk_str(rb, "redirect");
		resp_add_int(rb, -1);
		resp_add_bulk_str(rb, "prefixes");
		resp_add_array(rb, 0);
		break;
	case CL_UNBLOCK: {
		int64_t id;
		if (argc == 4 && !resp_arg_is(&argv[3], "TIMEOUT") && !resp_arg_is(&argv[3], "ERROR"))
			resp_add_error(rb, "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
		else if (argc > 4)
			cmd_reply_sub_syntax(argv, rb);
		else if (cmd_arg_i64(&argv[2], &id, rb))
			resp_add_int(rb, 0); /* no client is ever blocked */
		break;
	}
	case CL_UNPAUSE: resp_add_simple(rb, "OK"); break;
	case CL_PAUSE: client_pause(argv, argc, rb); break;
	case CL_TRACKING: client_tracking(c, argv, argc, rb); break;
	default: /* CACHING */
		resp_add_error(rb, "ERR CLIENT CACHING can be called only when the client is in tracking mode with "
				   "OPTIN or OPTOUT mode enabled");
		break;
	}
}

static void run_client(CMD_RUN_ARGS)
{
	char line[768];
	int sub = cmd_subcommand(argv, argc, client_subs, sizeof(client_subs) / sizeof(client_subs[0]), rb);
	switch (sub) {
	case -1: break;
	case CL_ID: resp_add_int(rb, (int64_t)c->id); break;
	case CL_INFO:
		client_info_line(c, line, sizeof(line));
		resp_add_verbatim(rb, line, strlen(line), c->proto);
		break;
	case CL_LIST: client_list(c, argv, argc, rb); break;
	case CL_GETNAME:
		if (c->name[0])
			resp_add_bulk_str(rb, c->name);
		else
			resp_add_null(rb, c->proto);
		break;
	case CL_SETNAME:
		if (valid_client_name(&argv[2], rb)) {
			set_name(c, &argv[2]);
			resp_add_simple(rb, "OK");
		}
		break;
	case CL_KILL: client_kill(c, argv, argc, rb); break;
	case CL_REPLY: client_reply(c, &argv[2], rb); break;
	case CL_HELP: cmd_reply_help(&argv[0], client_help, rb); break;
	case CL_NOEVICT:
	case CL_NOTOUCH:
		if (resp_arg_is(&argv[2], "ON") || resp_arg_is(&argv[2], "OFF"))
			resp_add_simple(rb, "OK");
		else
			resp_add_error(rb, "ERR syntax error");
		break;
	case CL_SETINFO: resp_add_simple(rb, "OK"); break; /* Redis 7.2's, sent by new clients at connect */
	default: client_off_features(c, sub, argv, argc, rb); break;
	}
}

/* ---- the table ---- */

#define NA CMDF_NOAUTH

static const struct cmd_def defs[] = {
	{"ping", -1, 0, 0, 0, 0, run_ping, NULL, "Returns the server's liveliness response.", NULL, NULL},
	{"echo", 2, 0, 0, 0, 0, run_echo, NULL, "Returns the given string.", NULL, NULL},
	{"auth", -2, NA, 0, 0, 0, run_auth, NULL, "Authenticates the connection.", NULL, NULL},
	{"hello", -1, NA | CMDF_BARRIER, 0, 0, 0, run_hello, NULL, "Handshakes with the Redis server.", NULL, NULL},
	{"select", 2, 0, 0, 0, 0, cmd_run_select_db, NULL, "Changes the selected database (a keyspace in cluster mode).", NULL, NULL},
	{"quit", -1, NA, 0, 0, 0, run_quit, NULL, "Closes the connection.", NULL, NULL},
	{"client", -2, 0, 0, 0, 0, run_client, NULL, "A container for client connection commands.", NULL, NULL},
};

#undef NA

const struct cmd_family cmd_family_conn = {defs, sizeof(defs) / sizeof(defs[0]), "connection"};
