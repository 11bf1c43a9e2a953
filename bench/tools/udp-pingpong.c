/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UDP ping-pong for the bench's IPv6 latency figures (bench/lib/tools.ts, udpPingPong): Debian
 * 12's sockperf (3.7) takes IPv4 addresses only. Does what sockperf's ping-pong does: one datagram
 * in flight, the next sent when the echo arrives, blocking calls on one UDP socket. Built by the
 * bench itself (cc -O2, into a temporary directory); without a compiler the bench uses its python3
 * client and server, which do the same with python3's per-message time in every sample.
 *
 *   udp-pingpong server <ip> <port>
 *   udp-pingpong client <ip> <port> <seconds> <size>
 *
 * The client leaves the first 0.2 s out (warm-up), then prints "lost N" (echoes not back within
 * 1 s) and, on a second line, every round trip in ns (CLOCK_MONOTONIC around send and receive),
 * separated by spaces: the python3 client's output, parsed by the same code.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int sock_for(const char *ip, int port, struct sockaddr_storage *sa, socklen_t *len)
{
	memset(sa, 0, sizeof(*sa));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1)
			return -1;
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)sa;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1)
			return -1;
		*len = sizeof(*s4);
	}
	return socket(sa->ss_family, SOCK_DGRAM, 0);
}

static long long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int server(int s, const struct sockaddr_storage *sa, socklen_t len)
{
	char buf[2048];

	if (bind(s, (const struct sockaddr *)sa, len) < 0) {
		perror("bind");
		return 1;
	}
	for (;;) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("recvfrom");
			return 1;
		}
		sendto(s, buf, n, 0, (struct sockaddr *)&from, flen);
	}
}

static int client(int s, const struct sockaddr_storage *sa, socklen_t len, double secs, int size)
{
	struct timeval tv = { .tv_sec = 1 };
	char buf[2048], msg[2048];
	long long warm, end, lost = 0;
	size_t n = 0, cap = 1 << 16;
	long long *rtt = malloc(cap * sizeof(*rtt));

	if (!rtt || size < 1 || size > (int)sizeof(msg))
		return 2;
	memset(msg, 'x', size);
	if (setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(s, (const struct sockaddr *)sa, len) < 0) {
		perror("connect");
		return 1;
	}
	warm = now_ns() + 200000000LL;
	end = warm + (long long)(secs * 1e9);
	for (;;) {
		long long t0 = now_ns(), t1;

		if (t0 >= end)
			break;
		if (send(s, msg, size, 0) < 0) {
			if (errno == ECONNREFUSED || errno == EINTR)
				continue;
			perror("send");
			return 1;
		}
		if (recv(s, buf, sizeof(buf), 0) < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNREFUSED) {
				lost++;
				continue;
			}
			if (errno == EINTR)
				continue;
			perror("recv");
			return 1;
		}
		t1 = now_ns();
		if (t0 < warm)
			continue;
		if (n == cap) {
			long long *more = realloc(rtt, 2 * cap * sizeof(*rtt));

			if (!more)
				return 2;
			rtt = more;
			cap *= 2;
		}
		rtt[n++] = t1 - t0;
	}
	printf("lost %lld\n", lost);
	for (size_t i = 0; i < n; i++)
		printf(i ? " %lld" : "%lld", rtt[i]);
	printf("\n");
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage sa;
	socklen_t len;
	int s;

	if (argc == 4 && !strcmp(argv[1], "server")) {
		s = sock_for(argv[2], atoi(argv[3]), &sa, &len);
		if (s < 0) {
			fprintf(stderr, "udp-pingpong: bad address %s\n", argv[2]);
			return 2;
		}
		return server(s, &sa, len);
	}
	if (argc == 6 && !strcmp(argv[1], "client")) {
		s = sock_for(argv[2], atoi(argv[3]), &sa, &len);
		if (s < 0) {
			fprintf(stderr, "udp-pingpong: bad address %s\n", argv[2]);
			return 2;
		}
		return client(s, &sa, len, atof(argv[4]), atoi(argv[5]));
	}
	fprintf(stderr, "usage: udp-pingpong server <ip> <port> | client <ip> <port> <seconds> <size>\n");
	return 2;
}
