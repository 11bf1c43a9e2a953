/*
 * tortie-cni-client: the installed `tortie` / `tortie-ipam` wrappers' way to the resident
 * tortie-cni-server (src/cni/server.ts), compiled by `installCni` when a C compiler is there
 * (else the wrappers use the Perl client in src/cni/install.ts).
 *
 *   tortie-cni-client SOCKET PLUGIN FALLBACK-ARGV...
 *
 * Connects to SOCKET; when nobody listens, execs FALLBACK-ARGV (the plugin process) with stdin
 * still unread. Otherwise sends "PLUGIN\n", the environment as NUL-terminated KEY=VALUE entries,
 * an empty entry, then stdin; half-closes; reads "<status>\n<stdout>" and reproduces both.
 * A server that fails mid-request, answers something that is not "<digits>\n…", or gives
 * no answer within ANSWER_TIMEOUT_S (it bounds its own requests well within that) yields CNI
 * error 11 (try again later) on stdout and exit status 1, as a plugin's error would.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

#define ANSWER_TIMEOUT_S 180

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int no_answer(const char *path)
{
	printf("{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"tortie CNI server on %s gave no answer\"}\n", path);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: tortie-cni-client SOCKET PLUGIN FALLBACK-ARGV...\n");
		return 2;
	}
	const char *path = argv[1], *plugin = argv[2];
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || strlen(path) >= sizeof addr.sun_path ||
	    (memcpy(addr.sun_path, path, strlen(path) + 1), connect(s, (struct sockaddr *)&addr, sizeof addr) != 0)) {
		if (s >= 0)
			close(s);
		execv(argv[3], argv + 3);
		perror("tortie-cni-client: exec fallback");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	struct timeval tv = { .tv_sec = ANSWER_TIMEOUT_S };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (write_all(s, plugin, strlen(plugin)) || write_all(s, "\n", 1))
		return no_answer(path);
	for (char **e = environ; *e; e++)
		if (write_all(s, *e, strlen(*e) + 1))
			return no_answer(path);
	if (write_all(s, "", 1))
		return no_answer(path);
	char buf[65536];
	ssize_t n;
	while ((n = read(0, buf, sizeof buf)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (write_all(s, buf, (size_t)n))
			return no_answer(path);
	}
	shutdown(s, SHUT_WR);
	size_t cap = sizeof buf, len = 0;
	char *r = malloc(cap);
	if (!r)
		return no_answer(path);
	while ((n = read(s, r + len, cap - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return no_answer(path);
		}
		len += (size_t)n;
		if (len == cap) {
			char *bigger = realloc(r, cap *= 2);
			if (!bigger)
				return no_answer(path);
			r = bigger;
		}
	}
	char *nl = memchr(r, '\n', len);
	if (!nl || nl == r || nl - r > 3)
		return no_answer(path);
	int code = 0;
	for (char *d = r; d < nl; d++) {
		if (*d < '0' || *d > '9')
			return no_answer(path);
		code = code * 10 + (*d - '0');
	}
	if (code > 255)
		return no_answer(path);
	if (write_all(1, nl + 1, len - (size_t)(nl + 1 - r)))
		return 1;
	return code;
}
