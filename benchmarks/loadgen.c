/* loadgen: a fan-out load generator for line-based chat servers (the chatroom line protocol).
 *
 * It joins N clients (each answers the nickname prompt with "mNNN" and waits for a line that
 * names it), then runs one or more *steps*: in a step, S of the clients send R lines a second
 * in total for D seconds, round robin, while every client reads everything. Each line carries
 * "#L <sender> <seq> <monotonic ns>", so a receiver measures latency and checks, per sender,
 * that nothing is missing, doubled or out of order. After the send window it drains: it keeps
 * reading until every open receiver has every line or --drain seconds pass.
 *
 * One JSON object per line on stdout: {"phase":"handshake",...}, then one {"phase":"step",...}
 * per step. A step passes when no open receiver misses a line, none was cut, order held and
 * p99 < --p99-ms. With --stop-on-fail the run ends at the first failing step, with
 * --stop-after K at the K-th failing step in a row (a lost, doubled or reordered line or a
 * cut member always ends it; after a failure the backlog drains first); with --abort the
 * step itself ends early once the receivers fall far behind (a ramp need not wait for a
 * hopeless step). --retries K tries a step that failed on timing alone (late or owed lines,
 * never a lost, doubled or reordered line or a cut member) up to K more times, after its
 * backlog drained: on a shared machine a neighbour's burst should not end a ramp. Every
 * attempt is reported. --server-pid PID adds the server's CPU seconds and RSS for each step.
 * --probe-at T1,T2 opens a fresh client T seconds into each step and reports how long its
 * join took (prompt, nickname, welcome), for "can a newcomer get in during overload".
 *
 * Rooms (--rooms R [--rooms-each K]): after its welcome client i joins #r{(i+K-1)%R} ... #r{i%R}
 * (the last is its current room) and parts the default room #lobby, and counts as joined
 * once every confirmation came ("*** you joined #rX", "*** you left #lobby"). Sender s talks
 * in #r{s%R}: a receiver expects the lines of the senders of its own rooms only, a line from
 * any other room is a "stray" (a failure, like a doubled line). Handshakes stay bounded by
 * --inflight, so the lobby, where every arrival is announced to everyone, stays that small
 * (the handshake record reports lobby_max). --src-ips N spreads the clients over source
 * addresses 127.0.0.1..N (each has ~28000 ephemeral ports).
 *
 * Spreading a crowd over processes (benchmarks/scale.py): a process has 20000 descriptors at
 * most, and one thread reads at most so many lines a second. --src-base K starts the source
 * addresses at 127.0.0.(K+1), so processes do not share ports; --nick-prefix P names the
 * clients P0, P1... (default "m"); --passive makes a process's clients receivers only: they
 * check the lines of the --senders S senders of another process (order, gaps, doubles,
 * latency), and what is owed is counted against the highest sequence any of them saw;
 * --wait-stdin holds the steps until a line arrives on stdin, so that processes start them
 * together. --storm-at T:K: T seconds into the first step, reset K of the receivers at once
 * (RST: SO_LINGER 0) and connect K fresh clients at once (nicknames P_sN); the step record
 * says when the last of them was welcomed (storm_join_s).
 * Written for the chatroom benchmarks (benchmarks/run.py); single-threaded, epoll, no deps.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IN_SIZE (64 * 1024)
#define OUT_LIMIT (8 * 1024 * 1024) /* a sender's queued bytes past which lines are not sent */
#define MAX_STEPS 64
#define MAX_PROBES 16

enum state { CONNECTING, PROMPTED_WAIT, NICK_SENT, ROOMING, JOINED, DEAD };
/* ROOMING: welcomed, joining its rooms and leaving #lobby (with --rooms only) */

typedef struct client {
    int fd, id, state, probe, want_out;
    char nick[24];
    int nick_len;
    char *in;
    size_t in_len;
    char *out;
    size_t out_len, out_cap;
    uint32_t *next_seq; /* per sender: the next sequence number this receiver expects */
    uint64_t gaps, ooo, dups;  /* lines missing inside the stream, out of order, doubled */
    uint64_t got_step;
    int cut;        /* closed by the server (or reset) after joining */
    int rooms_ok, left_lobby; /* --rooms: confirmations seen while ROOMING */
    int settled;    /* its handshake ended: joined, or dead */
    int storm;      /* --storm-at: a newcomer of the storm (unchecked, like a probe) */
    double t_start, t_joined;
} client_t;

/* ---- options ---- */
static const char *opt_host = "127.0.0.1";
static int opt_port, opt_clients = 100, opt_senders = 1, opt_inflight = 64, opt_server_pid;
static double opt_drain = 2.0, opt_hs_timeout = 60.0, opt_settle = 0.0, opt_p99_ms = 100.0;
static int opt_stop_on_fail, opt_abort, opt_pad, opt_retries;
/* --late-ok: with --stop-after, a step that was only late (p99 over the limit, yet every
 * line arrived by the end of its drain: nothing lost, doubled or reordered, nobody cut, not
 * aborted) does not count towards the failures in a row. A server that batches more as
 * the rate grows (Twisted's own write buffers do) can be late at one rate and on time at
 * the next; the ramp ends where it falls behind, not where it is first late. */
static int opt_late_ok, step_late_only;
static int opt_rooms, opt_rooms_each = 1, opt_src_ips = 1;
/* --irc: speak IRC (NICK/USER, then JOIN #lobby; joined at its end of NAMES; lines are
 * PRIVMSG #lobby; PINGs answered), to the IRC front end or another IRC server */
static int opt_irc;
/* spreading over processes and addresses (see the header) */
static int opt_src_base, opt_passive, opt_wait_stdin, opt_storm_k;
static double opt_storm_at = -1;
static const char *opt_prefix = "m";
static double step_rate[MAX_STEPS], step_secs[MAX_STEPS];
static int n_steps;
static double probe_at[MAX_PROBES];
static int n_probes;

/* ---- state ---- */
static int ep;
static client_t *cl;  /* opt_clients receivers, then probe clients */
static int n_total;
static uint64_t *sent_by; /* per sender: lines sent so far (= next seq) */
static uint64_t self_echo, refused_nick, conn_errors, strays, rooms_refused;
static int joined_n, n_settled;
static int *room_open; /* --rooms: open (joined) members of each room */
static int lobby_n, lobby_max; /* --rooms: welcomed clients still in #lobby */

/* latency histogram in microseconds: 64 linear buckets, then 32 per power of two */
#define SUB 32
#define NBUCKETS (64 + 40 * SUB)
static uint64_t hist[NBUCKETS], hist_n;
static double lat_max_ms;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* --rooms: does receiver r get sender s's lines (is s's room one of r's)? */
static int shares_room(int r, int s) {
    if (!opt_rooms) return 1;
    int d = ((s % opt_rooms) - (r % opt_rooms) + opt_rooms) % opt_rooms;
    return d < opt_rooms_each;
}
/* the members a line of sender s should reach: its room's open members, or everyone */
static int audience(int s) {
    return opt_rooms ? room_open[s % opt_rooms] : joined_n;
}
/* open members per room, on average, for the offered rate */
static double fan_out(int members) {
    return opt_rooms ? (double)members * opt_rooms_each / opt_rooms - 1 : members - 1;
}

static int bucket(uint64_t us) {
    if (us < 64) return (int)us;
    int e = 63 - __builtin_clzll(us); /* 6.. */
    int b = 64 + (e - 6) * SUB + (int)((us >> (e - 5)) & (SUB - 1));
    return b < NBUCKETS ? b : NBUCKETS - 1;
}
static double bucket_mid_ms(int b) {
    if (b < 64) return (b + 0.5) / 1000.0;
    int e = (b - 64) / SUB + 6, s = (b - 64) % SUB;
    double lo = ldexp(1.0, e) + s * ldexp(1.0, e - 5);
    return (lo + ldexp(1.0, e - 6)) / 1000.0;
}
static double percentile(double p) {
    if (!hist_n) return -1;
    uint64_t rank = (uint64_t)ceil(p * (double)hist_n), acc = 0;
    if (rank == 0) rank = 1;
    for (int b = 0; b < NBUCKETS; b++) {
        acc += hist[b];
        if (acc >= rank) return bucket_mid_ms(b);
    }
    return bucket_mid_ms(NBUCKETS - 1);
}

/* ---- /proc readings ---- */
static double proc_cpu_ticks(int pid);
/* CPU seconds of every live thread of pid from /proc/PID/task/T/sched (se.sum_exec_runtime,
 * in ms with ns digits): /proc/PID/stat counts 10 ms ticks, too coarse for a quiet room;
 * the ticks where the kernel has no sched file */
static double proc_cpu(int pid) {
    char path[300], line[256];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    double ms = 0;
    int found = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%d/task/%s/sched", pid, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "se.sum_exec_runtime", 19)) {
                char *colon = strchr(line, ':');
                if (colon) { ms += atof(colon + 1); found = 1; }
                break;
            }
        fclose(f);
    }
    closedir(d);
    return found ? ms / 1000.0 : proc_cpu_ticks(pid);
}
static double proc_cpu_ticks(int pid) {
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    /* after ") ": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
    unsigned long long ut = 0, st = 0;
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
        field++;
        if (field == 14) ut = strtoull(tok, NULL, 10);
        if (field == 15) { st = strtoull(tok, NULL, 10); break; }
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}
static long proc_status_kb(int pid, const char *key) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') { v = strtol(line + kl + 1, NULL, 10); break; }
    fclose(f);
    return v;
}
/* the whole machine's busy CPU seconds (all cores), from /proc/stat */
static double machine_busy(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    unsigned long long v[10] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 5) return -1;
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]; /* not idle(3), iowait(4) */
    return (double)busy / (double)sysconf(_SC_CLK_TCK);
}
static double self_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

/* ---- connections ---- */
static void arm(client_t *c) {
    int want = c->state == CONNECTING || c->out_len > 0;
    if (want == c->want_out && c->state != CONNECTING) return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
}

static void count_open(client_t *c, int delta) {
    joined_n += delta;
    if (opt_rooms)
        for (int k = 0; k < opt_rooms_each; k++) room_open[(c->id + k) % opt_rooms] += delta;
}

/* a receiver's handshake is over (it joined, or died): one fewer in flight */
static void settle(client_t *c) {
    if (c->settled || c->probe) return;
    c->settled = 1;
    n_settled++;
}

static void kill_client(client_t *c, int by_server) {
    if (c->state == DEAD) return;
    settle(c);
    if (c->state == JOINED && by_server && !c->probe) c->cut = 1;
    if (c->state == JOINED && !c->probe) count_open(c, -1);
    if (c->state == ROOMING && !c->left_lobby) lobby_n--;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->state = DEAD;
}

static void flush_client(client_t *c) {
    while (c->out_len) {
        ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            kill_client(c, 1);
            return;
        }
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    arm(c);
}

static int queue(client_t *c, const char *data, size_t n) {
    if (c->state == DEAD) return 0;
    if (c->out_len + n > c->out_cap) {
        if (c->out_len + n > OUT_LIMIT) return 0;
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + n) cap *= 2;
        c->out = realloc(c->out, cap);
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, n);
    c->out_len += n;
    return 1;
}

static void start(client_t *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) { perror("socket"); exit(3); }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Keepalive after 1 s without a byte: a connection the server has cut whose RST our
     * kernel refused (under memory pressure a receive queue drops segments, and an RST past
     * the next expected byte only draws a rate-limited challenge ACK) would otherwise look
     * open forever and count as owing lines. The probe draws a fresh, exact RST. */
    int idle = 1, interval = 1, count = 3;
    setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    if (opt_src_ips > 1 || opt_src_base) { /* spread over 127.0.0.1..N: each address has its own ports */
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(opt_src_base + c->id % opt_src_ips));
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0) { perror("bind"); exit(3); }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port)};
    inet_pton(AF_INET, opt_host, &a.sin_addr);
    c->t_start = now();
    c->state = CONNECTING;
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        conn_errors++;
        close(c->fd);
        c->state = DEAD;
        settle(c);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->want_out = 1;
}

/* is `word` in `s` with no letter, digit or _ on either side? */
static int has_word(const char *s, size_t len, const char *word, size_t wl) {
    const char *end = s + len;
    for (const char *p = memmem(s, len, word, wl); p; p = memmem(p + 1, (size_t)(end - p - 1), word, wl)) {
        int left = p == s || !(p[-1] == '_' || (p[-1] >= '0' && p[-1] <= '9') || ((p[-1] | 32) >= 'a' && (p[-1] | 32) <= 'z'));
        const char *q = p + wl;
        int right = q == end || !(*q == '_' || (*q >= '0' && *q <= '9') || ((*q | 32) >= 'a' && (*q | 32) <= 'z'));
        if (left && right) return 1;
        if (p + 1 >= end) break;
    }
    return 0;
}
static int mentions_nickname(const char *s, size_t len) {
    for (size_t i = 0; i + 8 <= len; i++)
        if (!strncasecmp(s + i, "nickname", 8)) return 1;
    return 0;
}

static uint64_t parse_u(const char **p, const char *end, int *ok) {
    uint64_t v = 0;
    const char *q = *p;
    if (q >= end || *q < '0' || *q > '9') { *ok = 0; return 0; }
    while (q < end && *q >= '0' && *q <= '9') v = v * 10 + (uint64_t)(*q++ - '0');
    *p = q;
    return v;
}

/* ---- spreading over processes: passive receivers, the start signal, storms ---- */

/* --passive: the other process's sender sid has sent at least seq + 1 lines */
static void heard(uint64_t sid, uint64_t seq) {
    if (seq + 1 > sent_by[sid]) sent_by[sid] = seq + 1;
}

/* --wait-stdin: keep reading the room until a line (or EOF) comes on stdin */
static void pump(int timeout_ms);
static void wait_stdin(void) {
    struct pollfd p = {.fd = 0, .events = POLLIN};
    while (poll(&p, 1, 0) == 0) pump(5);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return;
}

/* reset a receiver's connection (RST, as when a machine drops off): not "cut by the server" */
static void reset_client(client_t *c) {
    if (c->state == DEAD) return;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    kill_client(c, 0);
}

static int storm_first, storm_fired;
static double storm_t;
/* --storm-at: the last K receivers reset at once, K newcomers connect at once */
static void start(client_t *c);
static void storm_fire(void) {
    storm_fired = 1;
    storm_t = now();
    for (int r = opt_clients - opt_storm_k; r < opt_clients; r++) reset_client(&cl[r]);
    for (int i = storm_first; i < storm_first + opt_storm_k; i++) start(&cl[i]);
}
/* newcomers of the storm not yet welcomed (nor dead), and when the last one was */
static int storm_busy(double *last_joined, int *joined) {
    int busy = 0;
    *joined = 0;
    *last_joined = storm_t;
    for (int i = storm_first; storm_fired && i < storm_first + opt_storm_k; i++) {
        if (cl[i].state == JOINED) {
            (*joined)++;
            if (cl[i].t_joined > *last_joined) *last_joined = cl[i].t_joined;
        } else if (cl[i].state != DEAD) busy++;
    }
    return busy;
}

static void on_chat_line(client_t *c, const char *s, size_t len, uint64_t t_ns) {
    const char *m = memmem(s, len, "#L ", 3);
    if (!m) return;
    const char *p = m + 3, *end = s + len;
    int ok = 1;
    uint64_t sid = parse_u(&p, end, &ok);
    if (ok && p < end && *p == ' ') p++; else ok = 0;
    uint64_t seq = parse_u(&p, end, &ok);
    if (ok && p < end && *p == ' ') p++; else ok = 0;
    uint64_t ts = parse_u(&p, end, &ok);
    if (!ok || sid >= (uint64_t)opt_senders) return;
    if ((int)sid == c->id && !opt_passive) { self_echo++; return; }
    if (opt_passive) heard(sid, seq);
    if (!shares_room(c->id, (int)sid)) { strays++; return; }
    uint64_t us = t_ns > ts ? (t_ns - ts) / 1000 : 0;
    hist[bucket(us)]++;
    hist_n++;
    double ms = (double)us / 1000.0;
    if (ms > lat_max_ms) lat_max_ms = ms;
    c->got_step++;
    uint32_t want = c->next_seq[sid];
    if (seq == want) c->next_seq[sid] = want + 1;
    else if (seq > want) { c->gaps += seq - want; c->next_seq[sid] = (uint32_t)seq + 1; }
    else if (seq + 1 == want) c->dups++;
    else c->ooo++;
}

static void on_irc_line(client_t *c, const char *s, size_t len, uint64_t t_ns) {
    if (len >= 5 && !memcmp(s, "PING ", 5)) {
        char b[600];
        int n = snprintf(b, sizeof b, "PONG %.*s\r\n", (int)(len - 5 > 500 ? 500 : len - 5), s + 5);
        queue(c, b, (size_t)n);
        flush_client(c);
        return;
    }
    switch (c->state) {
    case PROMPTED_WAIT: /* registered: join the channel */
        if (memmem(s, len, " 001 ", 5)) {
            queue(c, "JOIN #lobby\r\n", 13);
            flush_client(c);
            if (c->state != DEAD) c->state = NICK_SENT;
        } else if (memmem(s, len, " 433 ", 5) || memmem(s, len, " 432 ", 5)) {
            refused_nick++;
            kill_client(c, 0);
        }
        break;
    case NICK_SENT:
        if (memmem(s, len, " 366 ", 5)) {
            c->state = JOINED;
            c->t_joined = now();
            if (!c->probe) count_open(c, 1);
            settle(c);
        }
        break;
    case JOINED:
        if (!c->probe) on_chat_line(c, s, len, t_ns);
        break;
    default:
        break;
    }
}

static void on_line(client_t *c, const char *s, size_t len, uint64_t t_ns) {
    if (len && s[len - 1] == '\r') len--;
    if (opt_irc) { on_irc_line(c, s, len, t_ns); return; }
    switch (c->state) {
    case PROMPTED_WAIT:
        if (mentions_nickname(s, len)) {
            char b[40];
            int n = snprintf(b, sizeof b, "%s\r\n", c->nick);
            queue(c, b, (size_t)n);
            flush_client(c);
            if (c->state != DEAD) c->state = NICK_SENT;
        }
        break;
    case NICK_SENT:
        if (has_word(s, len, c->nick, (size_t)c->nick_len)) {
            if (opt_rooms && !c->probe) {
                /* the current room last; then out of the lobby, where arrivals are news */
                char b[256];
                int n = 0;
                for (int k = opt_rooms_each - 1; k >= 0; k--)
                    n += snprintf(b + n, sizeof b - (size_t)n, "/join #r%d\r\n", (c->id + k) % opt_rooms);
                n += snprintf(b + n, sizeof b - (size_t)n, "/part #lobby\r\n");
                c->state = ROOMING;
                lobby_n++;
                if (lobby_n > lobby_max) lobby_max = lobby_n;
                queue(c, b, (size_t)n);
                flush_client(c);
                break;
            }
            c->state = JOINED;
            c->t_joined = now();
            if (!c->probe) count_open(c, 1);
            settle(c);
        } else if (mentions_nickname(s, len)) {
            refused_nick++;
            kill_client(c, 0);
        }
        break;
    case ROOMING:
        if (len > 14 && !memcmp(s, "*** you joined", 14)) c->rooms_ok++;
        else if (len > 19 && !memcmp(s, "*** you left #lobby", 19)) { c->left_lobby = 1; lobby_n--; }
        else if (len > 2 && !memcmp(s, "! ", 2)) { /* a room refused: say why once, then give up */
            if (!rooms_refused++) fprintf(stderr, "loadgen: %s: %.*s\n", c->nick, (int)len, s);
            kill_client(c, 0);
            break;
        }
        if (c->rooms_ok == opt_rooms_each && c->left_lobby) {
            c->state = JOINED;
            c->t_joined = now();
            count_open(c, 1);
            settle(c);
        }
        break;
    case JOINED:
        if (!c->probe) on_chat_line(c, s, len, t_ns);
        break;
    default:
        break;
    }
}

static void on_readable(client_t *c) {
    for (int rounds = 0; rounds < 16 && c->state != DEAD; rounds++) {
        if (c->in_len >= IN_SIZE - 1) c->in_len = 0; /* a line longer than the buffer: dropped */
        size_t room = IN_SIZE - 1 - c->in_len;
        ssize_t n = recv(c->fd, c->in + c->in_len, room, 0);
        if (n == 0) { kill_client(c, 1); return; }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            kill_client(c, 1);
            return;
        }
        uint64_t t_ns = now_ns();
        c->in_len += (size_t)n;
        size_t pos = 0;
        for (;;) {
            char *nl = memchr(c->in + pos, '\n', c->in_len - pos);
            if (!nl) break;
            size_t l = (size_t)(nl - (c->in + pos));
            on_line(c, c->in + pos, l, t_ns);
            if (c->state == DEAD) return;
            pos += l + 1;
        }
        /* a prompt may come without its newline */
        if (!opt_irc && c->state == PROMPTED_WAIT && pos < c->in_len && mentions_nickname(c->in + pos, c->in_len - pos)) {
            on_line(c, c->in + pos, c->in_len - pos, t_ns);
            pos = c->in_len;
        }
        if (pos) {
            memmove(c->in, c->in + pos, c->in_len - pos);
            c->in_len -= pos;
        }
        if ((size_t)n < room) return; /* a short read: the socket is empty for now */
    }
}

static void pump(int timeout_ms) {
    struct epoll_event evs[1024];
    int n = epoll_wait(ep, evs, 1024, timeout_ms);
    for (int i = 0; i < n; i++) {
        client_t *c = evs[i].data.ptr;
        if (c->state == DEAD) continue;
        if (c->state == CONNECTING) {
            int err = 0;
            socklen_t l = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
            if (err) { conn_errors++; kill_client(c, 0); continue; }
            if (!(evs[i].events & (EPOLLOUT | EPOLLIN))) continue;
            c->state = PROMPTED_WAIT;
            if (opt_irc) {
                char b[100];
                int m = snprintf(b, sizeof b, "NICK %s\r\nUSER %s 0 * :%s\r\n", c->nick, c->nick, c->nick);
                queue(c, b, (size_t)m);
                flush_client(c);
                if (c->state == DEAD) continue;
            }
            arm(c);
        }
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) on_readable(c);
        if (c->state != DEAD && (evs[i].events & EPOLLOUT) && c->out_len) flush_client(c);
    }
}

/* lines still owed to receiver r: sent by the others it hears minus what it has, plus holes */
static uint64_t owed_to(int r) {
    client_t *c = &cl[r];
    uint64_t m = c->gaps;
    if (!opt_rooms) {
        for (int s = 0; s < opt_senders; s++)
            if (s != r || opt_passive) m += sent_by[s] - c->next_seq[s];
        return m;
    }
    for (int k = 0; k < opt_rooms_each; k++) /* only the senders of its own rooms */
        for (int s = (r + k) % opt_rooms; s < opt_senders; s += opt_rooms)
            if (s != r) m += sent_by[s] - c->next_seq[s];
    return m;
}

/* lines still owed to open receivers */
static uint64_t missing(void) {
    uint64_t m = 0;
    for (int r = 0; r < opt_clients; r++)
        if (cl[r].state == JOINED) m += owed_to(r);
    return m;
}

static void parse_list(const char *arg, double *out, int *n, int max) {
    char *copy = strdup(arg), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && *n < max; t = strtok_r(NULL, ",", &save)) out[(*n)++] = atof(t);
    free(copy);
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen --port P [--host H] [--clients N] [--senders S] [--step RATE:SECONDS]...\n"
            "               [--drain S] [--hs-timeout S] [--settle S] [--inflight K] [--p99-ms MS]\n"
            "               [--stop-on-fail | --stop-after K [--late-ok]] [--abort] [--retries K] [--pad BYTES] [--probe-at T1,T2] [--server-pid PID]\n"
            "               [--rooms R [--rooms-each K]] [--src-ips N] [--irc]\n"
            "               [--src-base K] [--nick-prefix P] [--passive] [--wait-stdin] [--storm-at T:K]\n");
    exit(2);
}

/* one attempt at one step; says whether it passed, and whether a failure was only timing */
static int probe_next;
static int do_step(int st, int attempt, int *retryable) {
    static char pad[4096];
    memset(pad, 'x', sizeof pad);
    double rate = step_rate[st], secs = step_secs[st];
    memset(hist, 0, sizeof hist);
    hist_n = 0;
    lat_max_ms = 0;
    uint64_t gaps0 = 0, ooo0 = 0, dups0 = 0, echo0 = self_echo, strays0 = strays;
    int cut0 = 0, open0 = 0;
    for (int r = 0; r < opt_clients; r++) {
        cl[r].got_step = 0;
        gaps0 += cl[r].gaps; ooo0 += cl[r].ooo; dups0 += cl[r].dups;
        cut0 += cl[r].cut;
        open0 += cl[r].state == JOINED;
    }
    uint64_t planned = 0, sent = 0, blocked = 0, expected = 0;
    double srv0 = opt_server_pid ? proc_cpu(opt_server_pid) : -1, lg0 = self_cpu(), mach0 = machine_busy();
    long rss_max = -1;
    int probe_first = probe_next, fired = 0, aborted = 0, behind = 0;
    const char *why = "";
    double ts = now(), tend = ts + secs, last_check = ts;
    int rr = 0;
    while (now() < tend) {
        double t = now();
        uint64_t due = (uint64_t)((t - ts) * rate);
        for (; planned < due && !opt_passive; planned++) {
            client_t *c = &cl[rr];
            if (c->state == JOINED) {
                char b[5200];
                int n = snprintf(b, sizeof b, "%s#L %d %llu %llu", opt_irc ? "PRIVMSG #lobby :" : "",
                                 rr, (unsigned long long)sent_by[rr], (unsigned long long)now_ns());
                if (opt_pad > 0) { b[n++] = ' '; memcpy(b + n, pad, (size_t)opt_pad); n += opt_pad; }
                b[n++] = '\r';
                b[n++] = '\n';
                if (queue(c, b, (size_t)n)) {
                    sent_by[rr]++;
                    sent++;
                    int others = audience(rr) - 1; /* the sender is open: it is the one skipped */
                    expected += (uint64_t)(others > 0 ? others : 0);
                } else blocked++;
            }
            rr = (rr + 1) % opt_senders;
        }
        for (int s = 0; s < opt_senders; s++)
            if (cl[s].out_len && cl[s].state != DEAD) flush_client(&cl[s]);
        if (opt_storm_k && !storm_fired && st == 0 && t - ts >= opt_storm_at) storm_fire();
        while (fired < n_probes && t - ts >= probe_at[fired] && probe_next < n_total) {
            start(&cl[probe_next++]);
            fired++;
        }
        pump(1);
        if (now() - last_check >= 0.1) {
            last_check = now();
            if (opt_server_pid) {
                long r = proc_status_kb(opt_server_pid, "VmRSS");
                if (r > rss_max) rss_max = r;
            }
            if (opt_abort && last_check - ts > 0.5) {
                double fan = fan_out(joined_n);
                double per_s = rate * (fan > 1 ? fan : 1);
                int far_behind = (double)missing() > 0.5 * per_s;
                for (int s = 0; s < opt_senders; s++)
                    if (cl[s].out_len > 256 * 1024) far_behind = 1;
                behind = far_behind ? behind + 1 : 0;
                if (behind >= 5) { aborted = 1; why = "receivers over 0.5 s behind"; break; }
            }
        }
    }
    double send_s = now() - ts;
    /* drain: read until nothing is owed or time is up; finish the probes' joins too */
    double td = now();
    for (;;) {
        int probes_busy = 0;
        for (int i = probe_first; i < probe_next; i++)
            if (cl[i].state != DEAD && cl[i].state != JOINED) probes_busy = 1;
        for (int s = 0; s < opt_senders; s++)
            if (cl[s].out_len && cl[s].state != DEAD) flush_client(&cl[s]);
        double storm_last;
        int storm_joined;
        if (storm_busy(&storm_last, &storm_joined)) probes_busy = 1;
        if (!probes_busy && missing() == 0) break;
        if (now() - td >= (aborted ? 0.2 : opt_drain)) break;
        pump(5);
    }
    double drain_s = now() - td;
    double srv1 = opt_server_pid ? proc_cpu(opt_server_pid) : -1, lg1 = self_cpu(), mach1 = machine_busy();
    long hwm = opt_server_pid ? proc_status_kb(opt_server_pid, "VmHWM") : -1;
    long rss_end = opt_server_pid ? proc_status_kb(opt_server_pid, "VmRSS") : -1;
    if (rss_end > rss_max) rss_max = rss_end;

    uint64_t delivered = 0, gaps = 0, ooo = 0, dups = 0, owed = missing(), owed_max = 0;
    int cut = 0, cut_in_order = 0, open = 0, owing = 0;
    for (int r = 0; r < opt_clients; r++) {
        client_t *c = &cl[r];
        if (c->state == JOINED) { /* who is owed what: one stuck reader, or everyone's tail? */
            uint64_t mine = owed_to(r);
            if (mine) owing++;
            if (mine > owed_max) owed_max = mine;
        }
        delivered += c->got_step;
        gaps += c->gaps; ooo += c->ooo; dups += c->dups;
        if (c->cut) { cut++; if (!c->gaps && !c->ooo && !c->dups) cut_in_order++; }
        if (c->state == JOINED) open++;
    }
    gaps -= gaps0; ooo -= ooo0; dups -= dups0;
    cut -= cut0;
    double p50 = percentile(0.50), p90 = percentile(0.90), p99 = percentile(0.99), p999 = percentile(0.999);
    double srv = srv0 >= 0 && srv1 >= 0 ? srv1 - srv0 : -1;
    uint64_t stray = strays - strays0;
    int pass = !aborted && owed == 0 && gaps == 0 && ooo == 0 && dups == 0 && stray == 0 && cut == 0 && blocked == 0 &&
               hist_n > 0 && p99 < opt_p99_ms;
    printf("{\"phase\":\"step\",\"step\":%d,\"clients\":%d,\"senders\":%d,\"rate\":%.1f,\"seconds\":%.2f,"
           "\"send_s\":%.3f,\"drain_s\":%.3f,\"planned\":%llu,\"sent\":%llu,\"blocked\":%llu,\"expected\":%llu,"
           "\"delivered\":%llu,\"owed\":%llu,\"owing\":%d,\"owed_max\":%llu,\"gaps\":%llu,\"out_of_order\":%llu,\"dups\":%llu,\"strays\":%llu,\"self_echo\":%llu,"
           "\"open_before\":%d,\"open\":%d,\"cut\":%d,\"cut_in_order\":%d,\"deliveries_per_s\":%.0f,"
           "\"offered_deliveries_per_s\":%.0f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,"
           "\"max_ms\":%.3f,\"server_cpu_s\":%.6f,\"server_cpu_s_per_M\":%.3f,\"server_rss_max_kb\":%ld,"
           "\"server_hwm_kb\":%ld,\"server_rss_end_kb\":%ld,\"loadgen_cpu_s\":%.3f,\"machine_busy_s\":%.3f,"
           "\"aborted\":%s,\"abort_reason\":\"%s\",\"attempt\":%d,\"probe_join_ms\":[",
           st, opt_clients, opt_senders, rate, secs, send_s, drain_s, (unsigned long long)planned,
           (unsigned long long)sent, (unsigned long long)blocked, (unsigned long long)expected,
           (unsigned long long)delivered, (unsigned long long)owed, owing, (unsigned long long)owed_max,
           (unsigned long long)gaps,
           (unsigned long long)ooo, (unsigned long long)dups, (unsigned long long)stray,
           (unsigned long long)(self_echo - echo0), open0,
           open, cut, cut_in_order, (double)delivered / (send_s > 0 ? send_s : 1),
           rate * fan_out(opt_clients), p50, p90, p99, p999, lat_max_ms, srv,
           srv >= 0 && delivered ? srv / (double)delivered * 1e6 : -1, rss_max, hwm, rss_end, lg1 - lg0,
           mach0 >= 0 && mach1 >= 0 ? mach1 - mach0 : -1, aborted ? "true" : "false", why, attempt);
    for (int i = probe_first; i < probe_next; i++) {
        client_t *c = &cl[i];
        double ms = c->state == JOINED ? (c->t_joined - c->t_start) * 1000.0 : -1;
        printf("%s%.2f", i > probe_first ? "," : "", ms);
        kill_client(c, 0);
    }
    double storm_last;
    int storm_joined, storm_left = storm_busy(&storm_last, &storm_joined);
    printf("],\"storm_reset\":%d,\"storm_joined\":%d,\"storm_pending\":%d,\"storm_join_s\":%.3f",
           storm_fired && st == 0 ? opt_storm_k : 0, storm_joined, storm_left, storm_last - storm_t);
    printf(",\"pass\":%s}\n", pass ? "true" : "false");
    fflush(stdout);
    *retryable = gaps == 0 && ooo == 0 && dups == 0 && stray == 0 && cut == 0;
    step_late_only = !pass && *retryable && !aborted && owed == 0 && blocked == 0;
    return pass;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define VAL (v ? (i++, v) : (usage(), ""))
        if (!strcmp(a, "--port")) opt_port = atoi(VAL);
        else if (!strcmp(a, "--host")) opt_host = VAL;
        else if (!strcmp(a, "--clients")) opt_clients = atoi(VAL);
        else if (!strcmp(a, "--senders")) opt_senders = atoi(VAL);
        else if (!strcmp(a, "--step")) {
            const char *s = VAL;
            if (n_steps >= MAX_STEPS) usage();
            step_rate[n_steps] = atof(s);
            const char *colon = strchr(s, ':');
            step_secs[n_steps++] = colon ? atof(colon + 1) : 5.0;
        } else if (!strcmp(a, "--drain")) opt_drain = atof(VAL);
        else if (!strcmp(a, "--hs-timeout")) opt_hs_timeout = atof(VAL);
        else if (!strcmp(a, "--settle")) opt_settle = atof(VAL);
        else if (!strcmp(a, "--inflight")) opt_inflight = atoi(VAL);
        else if (!strcmp(a, "--p99-ms")) opt_p99_ms = atof(VAL);
        else if (!strcmp(a, "--stop-on-fail")) opt_stop_on_fail = 1;
        else if (!strcmp(a, "--stop-after")) opt_stop_on_fail = atoi(VAL);
        else if (!strcmp(a, "--abort")) opt_abort = 1;
        else if (!strcmp(a, "--late-ok")) opt_late_ok = 1;
        else if (!strcmp(a, "--irc")) opt_irc = 1;
        else if (!strcmp(a, "--pad")) opt_pad = atoi(VAL);
        else if (!strcmp(a, "--retries")) opt_retries = atoi(VAL);
        else if (!strcmp(a, "--probe-at")) parse_list(VAL, probe_at, &n_probes, MAX_PROBES);
        else if (!strcmp(a, "--server-pid")) opt_server_pid = atoi(VAL);
        else if (!strcmp(a, "--rooms")) opt_rooms = atoi(VAL);
        else if (!strcmp(a, "--rooms-each")) opt_rooms_each = atoi(VAL);
        else if (!strcmp(a, "--src-ips")) opt_src_ips = atoi(VAL);
        else if (!strcmp(a, "--src-base")) opt_src_base = atoi(VAL);
        else if (!strcmp(a, "--nick-prefix")) opt_prefix = VAL;
        else if (!strcmp(a, "--passive")) opt_passive = 1;
        else if (!strcmp(a, "--wait-stdin")) opt_wait_stdin = 1;
        else if (!strcmp(a, "--storm-at")) {
            const char *s = VAL;
            opt_storm_at = atof(s);
            const char *colon = strchr(s, ':');
            opt_storm_k = colon ? atoi(colon + 1) : 0;
        }
        else usage();
#undef VAL
    }
    if (!opt_port || opt_clients < 1 || opt_senders < 1 || opt_senders > opt_clients) usage();
    if (opt_rooms < 0 || opt_rooms_each < 1 || opt_rooms_each > 8 || (opt_rooms && opt_rooms_each > opt_rooms) ||
        (opt_rooms && opt_irc) || opt_src_ips < 1 ||
        opt_src_base < 0 || opt_src_base + opt_src_ips > 250 || (opt_passive && opt_rooms) ||
        opt_storm_k < 0 || opt_storm_k > opt_clients || strlen(opt_prefix) > 8)
        usage();
    room_open = calloc((size_t)(opt_rooms > 0 ? opt_rooms : 1), sizeof *room_open);
    if (opt_pad < 0 || opt_pad > 4000) opt_pad = 0;

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t want = (rlim_t)opt_clients + (rlim_t)opt_storm_k + MAX_PROBES * MAX_STEPS + 64;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    ep = epoll_create1(0);
    storm_first = opt_clients + n_probes * (n_steps ? n_steps : 1);
    n_total = storm_first + opt_storm_k;
    cl = calloc((size_t)n_total, sizeof *cl);
    sent_by = calloc((size_t)opt_senders, sizeof *sent_by);
    for (int i = 0; i < n_total; i++) {
        client_t *c = &cl[i];
        c->id = i;
        c->probe = i >= opt_clients;
        c->storm = i >= storm_first;
        c->nick_len = c->storm ? snprintf(c->nick, sizeof c->nick, "%s_s%d", opt_prefix, i - storm_first)
                      : c->probe ? snprintf(c->nick, sizeof c->nick, "p%s%d", strcmp(opt_prefix, "m") ? opt_prefix : "", i)
                      : snprintf(c->nick, sizeof c->nick, "%s%d", opt_prefix, i);
        c->in = malloc(IN_SIZE);
        c->next_seq = c->probe ? NULL : calloc((size_t)opt_senders, sizeof(uint32_t));
        c->state = DEAD;
        c->fd = -1;
    }

    /* ---- join everyone ---- */
    double t0 = now();
    int next = 0, in_flight;
    for (;;) {
        in_flight = next - n_settled;
        if (n_settled == opt_clients) break;
        if (now() - t0 > opt_hs_timeout) break;
        while (next < opt_clients && in_flight < opt_inflight) { start(&cl[next++]); in_flight++; }
        pump(5);
    }
    double hs = now() - t0;
    double t_settle = now();
    while (now() - t_settle < opt_settle) pump(20);
    long rss_idle = opt_server_pid ? proc_status_kb(opt_server_pid, "VmRSS") : -1;
    long hwm_idle = opt_server_pid ? proc_status_kb(opt_server_pid, "VmHWM") : -1;
    printf("{\"phase\":\"handshake\",\"clients\":%d,\"joined\":%d,\"refused_nick\":%llu,\"conn_errors\":%llu,"
           "\"rooms\":%d,\"rooms_each\":%d,\"rooms_refused\":%llu,\"lobby_max\":%d,"
           "\"handshake_s\":%.3f,\"server_rss_kb\":%ld,\"server_hwm_kb\":%ld,\"server_cpu_s\":%.3f,"
           "\"loadgen_cpu_s\":%.3f}\n",
           opt_clients, joined_n, (unsigned long long)refused_nick, (unsigned long long)conn_errors, opt_rooms,
           opt_rooms ? opt_rooms_each : 0, (unsigned long long)rooms_refused, lobby_max, hs, rss_idle, hwm_idle,
           opt_server_pid ? proc_cpu(opt_server_pid) : -1, self_cpu());
    fflush(stdout);
    if (joined_n < opt_clients) return 1;

    /* ---- steps ---- */
    if (opt_wait_stdin) wait_stdin();
    probe_next = opt_clients;
    int failed_in_row = 0;
    for (int st = 0; st < n_steps; st++) {
        int pass = 0, retryable = 0;
        for (int attempt = 0; attempt <= opt_retries; attempt++) {
            pass = do_step(st, attempt, &retryable);
            if (pass || !retryable || attempt == opt_retries) break;
            /* a timing failure: let the backlog drain, then try the same rate again */
            double td = now();
            while (missing() > 0 && now() - td < opt_drain + 3.0) pump(5);
            if (missing() > 0) break;
        }
        if (pass) { failed_in_row = 0; continue; }
        if (!retryable) break; /* a lost, doubled or reordered line, or a cut member: stop */
        if (opt_stop_on_fail && !(opt_late_ok && step_late_only) && ++failed_in_row >= opt_stop_on_fail) break;
        /* going on past a failure: start the next step with no backlog */
        double td = now();
        while (missing() > 0 && now() - td < opt_drain + 3.0) pump(5);
        if (missing() > 0 || joined_n < 2) break;
    }
    return 0;
}
