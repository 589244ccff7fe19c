/* floor: the least work a one-room chat server can do per line, in C: a yardstick.
 *
 * What any server on this machine pays whatever its language: the kernel's loopback path of
 * one send() per member per pass. It speaks the part of chatroom's line protocol that
 * benchmarks/loadgen.c and scale.py use (the nickname prompt, a welcome naming the nickname,
 * "*** N joined/left", "N: text" lines, "/who"), in one thread on epoll, and does nothing
 * else: no limits, no flood control, no history, no sanitising, no nickname rules. Every
 * line read in a turn of the event loop goes out at the end of that turn in one send() per
 * member (the sender's own lines left out), so it batches at least as well as chatroom does.
 * A member whose socket buffer is full has the rest queued (EPOLLOUT) and is cut past
 * OUT_LIMIT bytes.
 *
 *     floor --port 0 [--logfile=PATH] [--threads N]
 *
 * --threads N splits each pass over N threads (the event loop's and N-1 more), each sending
 * to its share of the members: how far sending from every core at once gets a big room.
 *
 * It writes "floor listening on tcp:127.0.0.1 (port=N)" to the log (or stdout) once it
 * listens, as chatroom's log does, and runs until SIGTERM. benchmarks/run.py builds it with
 * gcc -O2 (server kind "floor"); scale.py takes it in --servers like any other kind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 65536
#define IN_SIZE 4096
#define NICK_MAX 32
#define OUT_LIMIT (4 * 1024 * 1024)
#define ACCEPTS_PER_TURN 256

typedef struct {
    int fd, in_room, index, spoke; /* index: place in members[]; spoke: turn it last spoke */
    int dead;                      /* cut: closed by reap() at the next safe point */
    char nick[NICK_MAX + 1];
    char in[IN_SIZE];
    size_t in_len;
    char *out;
    size_t out_len, out_cap;
} client_t;

/* the turn's bytes, and which of them each speaker said (left out of its own copy) */
typedef struct { int fd; size_t at, len; } said_t;

static client_t *clients[MAX_FDS];
static int members[MAX_FDS], n_members;
static char *turn;
static size_t turn_len, turn_cap;
static said_t *said;
static size_t n_said, said_cap;
static int turn_id = 1, ep;
static client_t **dying;
static size_t n_dying, dying_cap;
static char scratch[1 << 20];
static pthread_mutex_t dying_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t pass_start, pass_end;
static int n_threads = 1;
static volatile sig_atomic_t stopping;

static void on_term(int sig) { (void)sig; stopping = 1; }

static void *grow(void *p, size_t *cap, size_t need, size_t unit) {
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    p = realloc(p, c * unit);
    if (!p) { perror("realloc"); exit(1); }
    *cap = c;
    return p;
}

static void drop(client_t *c) { /* from any thread of a pass */
    if (c->dead) return;
    c->dead = 1;
    pthread_mutex_lock(&dying_lock);
    dying = grow(dying, &dying_cap, n_dying + 1, sizeof *dying);
    dying[n_dying++] = c;
    pthread_mutex_unlock(&dying_lock);
}

/* what the member could not take now waits for EPOLLOUT; past OUT_LIMIT it is cut */
static void queue_out(client_t *c, const char *b, size_t len) {
    if (c->out_len + len > OUT_LIMIT) { drop(c); return; }
    if (!c->out_len) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = c->fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    c->out = grow(c->out, &c->out_cap, c->out_len + len, 1);
    memcpy(c->out + c->out_len, b, len);
    c->out_len += len;
}

static void deliver(client_t *c, const char *b, size_t len) {
    if (c->dead) return;
    if (c->out_len) { queue_out(c, b, len); return; }
    ssize_t n = send(c->fd, b, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) { drop(c); return; }
        n = 0;
    }
    if ((size_t)n < len) queue_out(c, b + n, len - (size_t)n);
}

static void flush_out(client_t *c) {
    if (c->dead) return;
    ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) drop(c);
        return;
    }
    memmove(c->out, c->out + n, c->out_len - (size_t)n);
    c->out_len -= (size_t)n;
    if (!c->out_len) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = c->fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

/* a line for everyone in the room but ``from`` (-1: everyone), sent at the end of the turn */
static void say(int from, const char *b, size_t len) {
    turn = grow(turn, &turn_cap, turn_len + len, 1);
    memcpy(turn + turn_len, b, len);
    if (from >= 0) {
        said = grow(said, &said_cap, n_said + 1, sizeof *said);
        said[n_said++] = (said_t){from, turn_len, len};
        clients[from]->spoke = turn_id;
    }
    turn_len += len;
}

/* close the members cut since the last call; their "left" lines go out with the next pass */
static void reap(void) {
    for (size_t k = 0; k < n_dying; k++) {
        client_t *c = dying[k];
        int fd = c->fd;
        if (c->in_room) {
            int last = members[--n_members];
            members[c->index] = last;
            clients[last]->index = c->index;
            char b[NICK_MAX + 16];
            int n = snprintf(b, sizeof b, "*** %s left\r\n", c->nick);
            say(-1, b, (size_t)n);
        }
        for (size_t i = 0; i < n_said; i++)
            if (said[i].fd == fd) said[i].fd = -1; /* its lines still go to the others */
        clients[fd] = NULL;
        close(fd);
        free(c->out);
        free(c);
    }
    n_dying = 0;
}

/* members [from, to) of the pass: one send() each of everything said in the turn */
static void send_share(int from_member, int to_member) {
    static __thread char *mine;
    static __thread size_t mine_cap;
    for (int i = from_member; i < to_member; i++) {
        client_t *c = clients[members[i]];
        if (c->spoke != turn_id) { deliver(c, turn, turn_len); continue; }
        mine = grow(mine, &mine_cap, turn_len, 1);
        size_t n = 0, from = 0;
        for (size_t k = 0; k < n_said; k++) {
            if (said[k].fd != c->fd) continue;
            memcpy(mine + n, turn + from, said[k].at - from);
            n += said[k].at - from;
            from = said[k].at + said[k].len;
        }
        memcpy(mine + n, turn + from, turn_len - from);
        deliver(c, mine, n + turn_len - from);
    }
}

static void *sender(void *arg) {
    int t = (int)(intptr_t)arg;
    for (;;) {
        pthread_barrier_wait(&pass_start);
        send_share((int)((long)n_members * t / n_threads), (int)((long)n_members * (t + 1) / n_threads));
        pthread_barrier_wait(&pass_end);
    }
    return NULL;
}

/* the end of a turn: one send() a member of everything said in it */
static void pass(void) {
    if (!turn_len) return;
    if (n_threads > 1 && n_members >= 64 * n_threads) {
        pthread_barrier_wait(&pass_start);
        send_share(0, (int)((long)n_members / n_threads));
        pthread_barrier_wait(&pass_end);
    } else {
        send_share(0, n_members);
    }
    turn_len = n_said = 0;
    turn_id++;
}

static void on_line(client_t *c, char *s, size_t len) {
    if (len && s[len - 1] == '\r') len--;
    char b[IN_SIZE + NICK_MAX + 8];
    if (!c->in_room) {
        if (!len || len > NICK_MAX) {
            deliver(c, "! a nickname is 1-32 bytes; nickname?\r\n", 39);
            return;
        }
        memcpy(c->nick, s, len);
        c->nick[len] = 0;
        int n = snprintf(b, sizeof b, "*** welcome, %s (%d here)\r\n", c->nick, n_members + 1);
        deliver(c, b, (size_t)n);
        c->in_room = 1;
        c->index = n_members;
        members[n_members++] = c->fd;
        n = snprintf(b, sizeof b, "*** %s joined\r\n", c->nick);
        say(c->fd, b, (size_t)n);
        return;
    }
    if (len == 4 && !memcmp(s, "/who", 4)) {
        size_t n = (size_t)snprintf(scratch, sizeof scratch, "*** %d in the room: ", n_members);
        for (int i = 0; i < n_members && n + NICK_MAX + 4 < sizeof scratch; i++)
            n += (size_t)snprintf(scratch + n, sizeof scratch - n, "%s%s", i ? ", " : "",
                                  clients[members[i]]->nick);
        memcpy(scratch + n, "\r\n", 2);
        deliver(c, scratch, n + 2);
        return;
    }
    int n = snprintf(b, sizeof b, "%s: %.*s\r\n", c->nick, (int)len, s);
    say(c->fd, b, (size_t)n);
}

static void on_readable(client_t *c) {
    int fd = c->fd;
    for (;;) {
        if (c->in_len == IN_SIZE) c->in_len = 0; /* a line longer than the buffer: dropped */
        ssize_t n = recv(fd, c->in + c->in_len, IN_SIZE - c->in_len, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) { drop(c); return; }
        if (n < 0) return;
        size_t start = 0, end = c->in_len + (size_t)n;
        for (size_t i = c->in_len; i < end; i++) {
            if (c->in[i] != '\n') continue;
            on_line(c, c->in + start, i - start);
            if (c->dead) return;
            start = i + 1;
        }
        memmove(c->in, c->in + start, end - start);
        c->in_len = end - start;
    }
}

static void on_accept(int listener) {
    for (int k = 0; k < ACCEPTS_PER_TURN; k++) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0) return;
        if (fd >= MAX_FDS) { close(fd); continue; }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        client_t *c = calloc(1, sizeof *c);
        if (!c) { perror("calloc"); exit(1); }
        c->fd = fd;
        clients[fd] = c;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        deliver(c, "Welcome! Your nickname?\r\n", 25);
    }
}

int main(int argc, char **argv) {
    int port = 0;
    FILE *log = stdout;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
        else if (!strncmp(argv[i], "--logfile=", 10) && argv[i][10]) log = fopen(argv[i] + 10, "w");
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) n_threads = atoi(argv[++i]);
        if (!log) { perror("log"); return 1; }
    }
    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(listener, (struct sockaddr *)&a, sizeof a) || listen(listener, 4096) ||
        getsockname(listener, (struct sockaddr *)&a, &al)) {
        perror("listen");
        return 1;
    }
    if (n_threads < 1) n_threads = 1;
    pthread_barrier_init(&pass_start, NULL, (unsigned)n_threads);
    pthread_barrier_init(&pass_end, NULL, (unsigned)n_threads);
    for (int t = 1; t < n_threads; t++) {
        pthread_t th;
        pthread_create(&th, NULL, sender, (void *)(intptr_t)t);
    }
    ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    fprintf(log, "floor listening on tcp:127.0.0.1 (port=%d)\n", ntohs(a.sin_port));
    fflush(log);
    static struct epoll_event events[4096];
    while (!stopping) {
        int n = epoll_wait(ep, events, 4096, 1000);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) { on_accept(listener); continue; }
            client_t *c = clients[fd];
            if (!c || c->dead) continue;
            if (events[i].events & EPOLLOUT) flush_out(c);
            if (!c->dead && events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
        }
        do { /* a member cut in a pass leaves: say so in one more */
            reap();
            pass();
        } while (n_dying);
    }
    fprintf(log, "floor stopping\n");
    return 0;
}
