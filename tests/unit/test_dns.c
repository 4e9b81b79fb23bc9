/* Unit tests for dns.c on a real loop and a real libunbound, without network: names under
 * test. come from libunbound's own local-zone/local-data, and the only forwarders are loopback
 * sockets this file owns (one that never answers, one port with no listener). */
#include "dns.h"
#include "err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "test.h"

/* ---- harness ---- */

struct run {
    uv_loop_t loop;
    uv_timer_t guard;
    struct dns *d;
    struct dns_result *r; /* the last result received */
    int calls;            /* callbacks received */
    int closed;
    bool timed_out;
    int silent_fd; /* a UDP socket that never answers, or -1 */
    char fwd[64];
};

static void guard_cb(uv_timer_t *h)
{
    struct run *t = h->data;

    t->timed_out = true;
    uv_stop(&t->loop);
}

static void done_cb(void *arg, struct dns_result *r)
{
    struct run *t = arg;

    dns_result_free(t->r);
    t->r = r;
    t->calls++;
    uv_stop(&t->loop);
}

static void closed_cb(void *arg)
{
    struct run *t = arg;

    t->closed++;
}

/* Binds a UDP socket on 127.0.0.1 that nobody reads: queries to it go unanswered. */
static int silent_forwarder(char *fwd, size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        TEST_FAIL_("silent forwarder: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    snprintf(fwd, len, "127.0.0.1@%u", ntohs(sa.sin_port));
    return fd;
}

/* Local data shared by the tests. Everything under test. is answered by libunbound itself
 * ("static": names without data are NXDOMAIN or NODATA), so nothing leaves the process;
 * the forwarder is a silent loopback socket in case something did. */
/* clang-format off */
static const char *const base_data[] = {
    "local-zone:", "test. static",
    "rrset-roundrobin:", "no", /* keep RRsets in the order given, so orders can be checked */
    /* mixed.test: both services, three targets, two families */
    "local-data:", "_xmpps-server._tcp.mixed.test. SRV 10 0 5223 direct.mixed.test.",
    "local-data:", "_xmpp-server._tcp.mixed.test. SRV 5 0 5269 a.mixed.test.",
    "local-data:", "_xmpp-server._tcp.mixed.test. SRV 20 0 5270 B.Mixed.Test.",
    "local-data:", "a.mixed.test. AAAA ::1",
    "local-data:", "a.mixed.test. AAAA ::3",
    "local-data:", "a.mixed.test. A 127.0.0.2",
    "local-data:", "a.mixed.test. A 127.0.0.5",
    "local-data:", "a.mixed.test. A 127.0.0.6",
    "local-data:", "direct.mixed.test. AAAA ::2",
    "local-data:", "direct.mixed.test. A 127.0.0.4",
    "local-data:", "b.mixed.test. A 127.0.0.3",
    /* nodirect.test: Direct TLS explicitly not offered, STARTTLS is */
    "local-data:", "_xmpps-server._tcp.nodirect.test. SRV 0 0 0 .",
    "local-data:", "_xmpp-server._tcp.nodirect.test. SRV 0 0 5269 x.nodirect.test.",
    "local-data:", "x.nodirect.test. A 127.0.0.7",
    /* noservice.test: "." for STARTTLS, nothing for Direct TLS, yet an A record */
    "local-data:", "_xmpp-server._tcp.noservice.test. SRV 0 0 0 .",
    "local-data:", "noservice.test. A 127.0.0.8",
    /* plain.test: no SRV at all */
    "local-data:", "plain.test. A 127.0.0.9",
    "local-data:", "plain.test. AAAA ::9",
    /* noaddr.test: a target without addresses */
    "local-data:", "_xmpp-server._tcp.noaddr.test. SRV 0 0 5269 gone.noaddr.test.",
    /* junk.test: records that are no host names or have port 0 */
    "local-data:", "_xmpp-server._tcp.junk.test. SRV 0 0 5269 bad_name.junk.test.",
    "local-data:", "_xmpp-server._tcp.junk.test. SRV 0 0 0 x.junk.test.",
    "local-data:", "x.junk.test. A 127.0.0.10",
    /* fail.test: the Direct TLS SRV query is refused, the other is empty */
    "local-zone:", "_xmpps-server._tcp.fail.test. refuse",
    "local-data:", "fail.test. A 127.0.0.11",
    NULL,
};
/* clang-format on */

static void run_init(struct run *t, const char *const *ub_options, uint64_t timeout_ms,
                     const char *forwarder)
{
    char err[256] = "";
    const char *fwds[2] = {NULL, NULL};
    struct dns_opts o = {
        .trust_anchor_file = "", .timeout_ms = timeout_ms, .ub_options = ub_options};

    memset(t, 0, sizeof(*t));
    t->silent_fd = -1;
    uv_loop_init(&t->loop);
    uv_timer_init(&t->loop, &t->guard);
    t->guard.data = t;
    if (forwarder == NULL) {
        t->silent_fd = silent_forwarder(t->fwd, sizeof(t->fwd));
        forwarder = t->fwd;
    }
    fwds[0] = forwarder;
    o.forwarders = fwds;
    t->d = dns_new(&t->loop, &o, err, sizeof(err));
    EXPECT_MSG(t->d != NULL, "%s", err);
}

/* Runs the loop until a callback arrives or guard_ms pass. */
static void run_until(struct run *t, uint64_t guard_ms)
{
    t->timed_out = false;
    uv_timer_start(&t->guard, guard_cb, guard_ms, 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&t->guard);
}

/* One lookup to the end. */
static struct dns_result *lookup(struct run *t, const char *domain)
{
    int before = t->calls;

    EXPECT(dns_lookup(t->d, domain, done_cb, t) != NULL);
    EXPECT_EQ_MSG(before, t->calls, "%s: callback inside dns_lookup", domain);
    run_until(t, 5000);
    EXPECT_MSG(!t->timed_out, "%s: no answer in 5 s", domain);
    EXPECT_EQ_MSG(before + 1, t->calls, "%s", domain);
    return t->r;
}

static void guard_closed_cb(uv_handle_t *h)
{
}

/* Closes the resolver and checks that the loop is left without a handle. */
static void run_cleanup(struct run *t)
{
    if (t->d != NULL) {
        dns_close(t->d, closed_cb, t);
        EXPECT_EQ(0, t->closed); /* never inside dns_close() */
        uv_close((uv_handle_t *)&t->guard, guard_closed_cb);
        uv_run(&t->loop, UV_RUN_DEFAULT); /* returns once every handle is closed */
        EXPECT_EQ(1, t->closed);
    } else {
        uv_close((uv_handle_t *)&t->guard, guard_closed_cb);
        uv_run(&t->loop, UV_RUN_DEFAULT);
    }
    EXPECT_EQ(0, uv_loop_close(&t->loop));
    dns_result_free(t->r);
    if (t->silent_fd >= 0)
        close(t->silent_fd);
}

/* "[::1]:5269" or "127.0.0.2:5269" */
static const char *addr_text(const struct dns_cand *c, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];

    if (c->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&c->addr;

        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
        EXPECT_EQ(sizeof(*s6), c->addrlen);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&c->addr;

        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
        EXPECT_EQ(sizeof(*s4), c->addrlen);
    }
    return buf;
}

struct want {
    const char *addr;
    bool direct;
    const char *host;
};

static void expect_cands(const struct dns_result *r, const struct want *w, size_t n)
{
    char buf[80];

    EXPECT_EQ_MSG(0, r->err, "%s", r->why);
    EXPECT_EQ(n, r->ncand);
    for (size_t i = 0; i < n && i < r->ncand; i++) {
        EXPECT_STR_MSG(w[i].addr, addr_text(&r->cand[i], buf, sizeof(buf)), "candidate %zu", i);
        EXPECT_EQ_MSG(w[i].direct, r->cand[i].direct_tls, "candidate %zu", i);
        EXPECT_STR_MSG(w[i].host, r->cand[i].host, "candidate %zu", i);
        EXPECT_MSG(!r->cand[i].secure, "candidate %zu", i); /* local data is not validated */
        EXPECT_EQ_MSG(0, r->cand[i].ntlsa, "candidate %zu", i);
    }
}

/* ---- tests ---- */

TEST(merged_and_ordered)
{
    struct run t;
    /* Priority 5 (STARTTLS a), 10 (Direct TLS), 20 (STARTTLS B, lower-cased); within a target
     * AAAA and A alternate, IPv6 first, and the longer family's rest follows. */
    static const struct want w[] = {
        {"[::1]:5269", false, "a.mixed.test"},         {"127.0.0.2:5269", false, "a.mixed.test"},
        {"[::3]:5269", false, "a.mixed.test"},         {"127.0.0.5:5269", false, "a.mixed.test"},
        {"127.0.0.6:5269", false, "a.mixed.test"},     {"[::2]:5223", true, "direct.mixed.test"},
        {"127.0.0.4:5223", true, "direct.mixed.test"}, {"127.0.0.3:5270", false, "b.mixed.test"},
    };
    struct dns_result *r;

    run_init(&t, base_data, 3000, NULL);
    if (t.d == NULL)
        return;
    r = lookup(&t, "Mixed.Test");
    if (r != NULL) {
        expect_cands(r, w, ARRAY_SIZE(w));
        EXPECT(!r->fallback);
        EXPECT(!r->srv_secure);
        EXPECT_STR("", r->why);
    }
    run_cleanup(&t);
}

TEST(dot_target)
{
    struct run t;
    static const struct want w[] = {{"127.0.0.7:5269", false, "x.nodirect.test"}};
    struct dns_result *r;

    run_init(&t, base_data, 3000, NULL);
    if (t.d == NULL)
        return;
    /* "." for Direct TLS only: the STARTTLS records are used. */
    r = lookup(&t, "nodirect.test");
    if (r != NULL)
        expect_cands(r, w, ARRAY_SIZE(w));
    /* "." for STARTTLS and nothing else: no service, and no A fallback although there is an A
     * record (XEP-0368 §5). */
    r = lookup(&t, "noservice.test");
    if (r != NULL) {
        EXPECT_EQ(XTP_ENXDOMAIN, r->err);
        EXPECT_EQ(0, r->ncand);
        EXPECT_MSG(strstr(r->why, "no XMPP service") != NULL, "%s", r->why);
    }
    run_cleanup(&t);
}

TEST(fallback_without_srv)
{
    struct run t;
    static const struct want w[] = {{"[::9]:5269", false, "plain.test"},
                                    {"127.0.0.9:5269", false, "plain.test"}};
    struct dns_result *r;

    run_init(&t, base_data, 3000, NULL);
    if (t.d == NULL)
        return;
    r = lookup(&t, "plain.test");
    if (r != NULL) {
        expect_cands(r, w, ARRAY_SIZE(w));
        EXPECT(r->fallback);
    }
    run_cleanup(&t);
}

TEST(nxdomain)
{
    struct run t;
    struct dns_result *r;

    run_init(&t, base_data, 3000, NULL);
    if (t.d == NULL)
        return;
    r = lookup(&t, "nowhere.test");
    if (r != NULL) {
        EXPECT_EQ(XTP_ENXDOMAIN, r->err);
        EXPECT_EQ(0, r->ncand);
        EXPECT(r->cand == NULL || r->ncand == 0);
        EXPECT_MSG(strstr(r->why, "nowhere.test") != NULL, "%s", r->why);
    }
    /* SRV present, but its target has no address. */
    r = lookup(&t, "noaddr.test");
    if (r != NULL) {
        EXPECT_EQ(XTP_ENXDOMAIN, r->err);
        EXPECT_MSG(strstr(r->why, "no SRV target") != NULL, "%s", r->why);
    }
    run_cleanup(&t);
}

TEST(unusable_records)
{
    struct run t;
    struct dns_result *r;

    run_init(&t, base_data, 3000, NULL);
    if (t.d == NULL)
        return;
    /* Only a non-host target and a port 0: the SRV answer failed; there is no fallback. */
    r = lookup(&t, "junk.test");
    if (r != NULL) {
        EXPECT_EQ(XTP_EDNS, r->err);
        EXPECT_MSG(strstr(r->why, "no usable record") != NULL, "%s", r->why);
    }
    run_cleanup(&t);
}

TEST(failed_srv_no_fallback)
{
    struct run t;
    struct dns_result *r;

    run_init(&t, base_data, 3000, NULL);
    if (t.d == NULL)
        return;
    /* _xmpps-server is REFUSED and _xmpp-server is empty: RFC 7673 §3.1 says abort, so the A
     * record of fail.test must not be used. */
    r = lookup(&t, "fail.test");
    if (r != NULL) {
        EXPECT_EQ(XTP_EDNS, r->err);
        EXPECT_EQ(0, r->ncand);
        EXPECT_MSG(strstr(r->why, "_xmpps-server SRV: rcode 5") != NULL, "%s", r->why);
    }
    run_cleanup(&t);
}

TEST(timeout)
{
    struct run t;
    struct dns_result *r;
    uint64_t start;

    run_init(&t, NULL, 300, NULL); /* no local data: everything goes to the silent socket */
    if (t.d == NULL)
        return;
    uv_update_time(&t.loop);
    start = uv_now(&t.loop);
    r = lookup(&t, "example.org");
    if (r != NULL) {
        uint64_t took = uv_now(&t.loop) - start;

        EXPECT_EQ(XTP_EDNS, r->err);
        EXPECT_MSG(strstr(r->why, "timeout after 300 ms waiting for _xmpps-server SRV") != NULL,
                   "%s", r->why);
        EXPECT_MSG(took >= 300 && took < 2000, "took %llu ms", (unsigned long long)took);
    }
    run_cleanup(&t);
}

TEST(cancel_before_completion)
{
    struct run t;
    struct dns_query *q;

    run_init(&t, NULL, 300, NULL);
    if (t.d == NULL)
        return;
    /* Pending at the silent forwarder: cancelled before its answer or its timeout. */
    q = dns_lookup(t.d, "example.org", done_cb, &t);
    EXPECT(q != NULL);
    dns_cancel(q);
    run_until(&t, 500); /* past the timeout it would have had */
    EXPECT(t.timed_out);
    EXPECT_EQ(0, t.calls);

    /* A lookup whose outcome is already known (a bad name) is cancelled just the same. */
    q = dns_lookup(t.d, "not a domain", done_cb, &t);
    EXPECT(q != NULL);
    dns_cancel(q);
    run_until(&t, 50);
    EXPECT_EQ(0, t.calls);

    dns_cancel(NULL); /* nothing */
    run_cleanup(&t);
}

/* Cancels the lookup in arg from a callback. */
struct canceller {
    struct run *t;
    struct dns_query *victim;
    int calls;
};

static void cancel_other_cb(void *arg, struct dns_result *r)
{
    struct canceller *c = arg;

    c->calls++;
    dns_cancel(c->victim);
    dns_result_free(r);
    uv_stop(&c->t->loop);
}

TEST(cancel_from_callback)
{
    struct run t;
    struct canceller c = {&t, NULL, 0};

    run_init(&t, base_data, 3000, NULL);
    if (t.d == NULL)
        return;
    /* Both fail at once (bad names) and sit on the ready list together: the first callback
     * cancels the second, which must then never run. */
    EXPECT(dns_lookup(t.d, "-bad.test", cancel_other_cb, &c) != NULL);
    c.victim = dns_lookup(t.d, "bad-.test", done_cb, &t);
    run_until(&t, 1000);
    EXPECT_EQ(1, c.calls);
    EXPECT_EQ(0, t.calls);
    run_cleanup(&t);
}

TEST(bad_domain_async)
{
    static const char *const bad[] = {"",           "192.0.2.1", "[::1]", "a..b", "example.test.",
                                      "_xmpp.test", "x y.test"};
    struct run t;

    run_init(&t, base_data, 3000, NULL);
    if (t.d == NULL)
        return;
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct dns_result *r = lookup(&t, bad[i]);

        if (r != NULL)
            EXPECT_EQ_MSG(-EINVAL, r->err, "%s", bad[i]);
    }
    run_cleanup(&t);
}

TEST(close_with_pending)
{
    struct run t;

    run_init(&t, NULL, 5000, NULL);
    if (t.d == NULL)
        return;
    EXPECT(dns_lookup(t.d, "example.org", done_cb, &t) != NULL);
    EXPECT(dns_lookup(t.d, "example.net", done_cb, &t) != NULL);
    run_until(&t, 50); /* let the queries reach libunbound's thread */
    EXPECT_EQ(0, t.calls);
    /* Closing completes both with ESHUTDOWN, from the loop and before the close callback. */
    dns_close(t.d, closed_cb, &t);
    EXPECT_EQ(0, t.calls);
    uv_close((uv_handle_t *)&t.guard, guard_closed_cb);
    while (t.closed == 0 && uv_run(&t.loop, UV_RUN_DEFAULT) != 0)
        ; /* done_cb stops the loop once per result */
    uv_run(&t.loop, UV_RUN_DEFAULT);
    EXPECT_EQ(2, t.calls);
    EXPECT_EQ(1, t.closed);
    if (t.r != NULL)
        EXPECT_EQ(XTP_ESHUTDOWN, t.r->err);
    EXPECT_EQ(0, uv_loop_close(&t.loop));
    dns_result_free(t.r);
    close(t.silent_fd);
}

/* ---- DNSSEC: a signed zone served by libunbound's own auth-zone ---- */

/* data/dnssec/sec.test.zone is signed by gen.py beside it (ECDSA P-256, NSEC, valid until
 * 2080), with some signatures broken on purpose; sec.test.key is its trust anchor. The
 * resolver recurses (no forwarder); the auth-zone answers sec.test. as if from upstream, so
 * the validator checks it; the root is stubbed to the silent socket. */
static char sec_conf[512], sec_dir[256];

static bool sec_paths(char *zone, char *key, size_t len)
{
    const char *src = getenv("XTP_SRC");
    char rel[512];

    snprintf(rel, sizeof(rel), "%s/tests/unit/data/dnssec/sec.test.zone", src ? src : "..");
    if (src == NULL || realpath(rel, zone) == NULL) {
        if (realpath("data/dnssec/sec.test.zone", zone) == NULL) {
            TEST_FAIL_("cannot find %s", "data/dnssec/sec.test.zone");
            return false;
        }
    }
    snprintf(key, len, "%.*s.key", (int)(strlen(zone) - strlen(".zone")), zone);
    return true;
}

static void run_init_sec(struct run *t)
{
    static const char *const no_forwarders[] = {NULL};
    char zone[PATH_MAX], key[PATH_MAX], err[256] = "";
    struct dns_opts o = {.forwarders = no_forwarders, .timeout_ms = 5000};
    FILE *f;

    memset(t, 0, sizeof(*t));
    t->silent_fd = -1;
    uv_loop_init(&t->loop);
    uv_timer_init(&t->loop, &t->guard);
    t->guard.data = t;
    if (!sec_paths(zone, key, sizeof(key)))
        return;
    t->silent_fd = silent_forwarder(t->fwd, sizeof(t->fwd));
    snprintf(sec_dir, sizeof(sec_dir), "%s/test_dns.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(sec_dir) == NULL) {
        TEST_FAIL_("mkdtemp: %s", strerror(errno));
        return;
    }
    snprintf(sec_conf, sizeof(sec_conf), "%s/unbound.conf", sec_dir);
    f = fopen(sec_conf, "w");
    if (f == NULL) {
        TEST_FAIL_("%s: %s", sec_conf, strerror(errno));
        return;
    }
    fprintf(f,
            "server:\n"
            "    verbosity: 0\n"
            "    local-zone: \"test.\" nodefault\n" /* RFC 6761 default: NXDOMAIN for all */
            "    do-not-query-localhost: no\n"
            "    trust-anchor-signaling: no\n"
            "stub-zone:\n"
            "    name: \".\"\n"
            "    stub-addr: %s\n"
            "auth-zone:\n"
            "    name: \"sec.test.\"\n"
            "    zonefile: \"%s\"\n"
            "    for-upstream: yes\n"
            "    for-downstream: no\n"
            "    fallback-enabled: no\n",
            t->fwd, zone);
    fclose(f);
    o.ub_config = sec_conf;
    o.trust_anchor_file = key;
    t->d = dns_new(&t->loop, &o, err, sizeof(err));
    EXPECT_MSG(t->d != NULL, "%s", err);
}

static void cleanup_sec(struct run *t)
{
    run_cleanup(t);
    unlink(sec_conf);
    rmdir(sec_dir);
}

/* The TLSA RRset has the wanted records, in any order (RRsets have none). Each wanted record
 * is usage, selector, matching type, a length and one byte value filling the data. */
static void expect_tlsa(const struct dns_cand *c, size_t n, const uint8_t (*want)[3],
                        const uint8_t *fill, const size_t *len)
{
    EXPECT_EQ(n, c->ntlsa);
    for (size_t i = 0; i < n; i++) {
        bool found = false;

        for (size_t j = 0; j < c->ntlsa && !found; j++) {
            const struct srv_tlsa *t = &c->tlsa[j];
            bool same = t->usage == want[i][0] && t->selector == want[i][1] &&
                        t->mtype == want[i][2] && t->len == len[i];

            for (size_t k = 0; same && k < t->len; k++)
                same = t->data[k] == fill[i];
            found = same;
        }
        EXPECT_MSG(found, "TLSA %u %u %u with %zu bytes of %02x", want[i][0], want[i][1],
                   want[i][2], len[i], fill[i]);
    }
}

TEST(dnssec_secure)
{
    struct run t;
    struct dns_result *r;
    char buf[80];

    run_init_sec(&t);
    if (t.d == NULL) {
        cleanup_sec(&t);
        return;
    }
    /* Both SRV names signed, one target, AAAA and A signed, TLSA signed for both ports. */
    r = lookup(&t, "sec.test");
    if (r != NULL) {
        static const char *const addrs[] = {"[2001:db8::1:2]:5223", "127.0.1.2:5223",
                                            "[2001:db8::1:2]:5269", "127.0.1.2:5269"};
        static const uint8_t tl_direct[][3] = {{3, 1, 1}, {2, 0, 2}};
        static const uint8_t fill_direct[] = {0x22, 0x33};
        static const size_t len_direct[] = {32, 64};
        static const uint8_t tl_starttls[][3] = {{3, 1, 1}};
        static const uint8_t fill_starttls[] = {0x11};
        static const size_t len_starttls[] = {32};

        EXPECT_EQ_MSG(0, r->err, "%s", r->why);
        EXPECT(r->srv_secure);
        EXPECT(!r->fallback);
        EXPECT_EQ(4, r->ncand);
        for (size_t i = 0; i < 4 && i < r->ncand; i++) {
            EXPECT_STR_MSG(addrs[i], addr_text(&r->cand[i], buf, sizeof(buf)), "cand %zu", i);
            EXPECT_MSG(r->cand[i].secure, "cand %zu", i);
            EXPECT_EQ_MSG(i < 2, r->cand[i].direct_tls, "cand %zu", i);
            EXPECT_STR_MSG("xmpp.sec.test", r->cand[i].host, "cand %zu", i);
            if (i < 2)
                expect_tlsa(&r->cand[i], 2, tl_direct, fill_direct, len_direct);
            else
                expect_tlsa(&r->cand[i], 1, tl_starttls, fill_starttls, len_starttls);
        }
    }
    /* No SRV (proven by NSEC), an A but no AAAA (proven), TLSA at the domain's port 5269. */
    r = lookup(&t, "plain.sec.test");
    if (r != NULL) {
        static const uint8_t tl[][3] = {{3, 0, 1}};
        static const uint8_t fill[] = {0x44};
        static const size_t len[] = {32};

        EXPECT_EQ_MSG(0, r->err, "%s", r->why);
        EXPECT(r->fallback);
        EXPECT(r->srv_secure);
        EXPECT_EQ(1, r->ncand);
        if (r->ncand == 1) {
            EXPECT_STR("127.0.1.3:5269", addr_text(&r->cand[0], buf, sizeof(buf)));
            EXPECT(r->cand[0].secure);
            EXPECT(!r->cand[0].direct_tls);
            expect_tlsa(&r->cand[0], 1, tl, fill, len);
        }
    }
    cleanup_sec(&t);
}

TEST(dnssec_bogus)
{
    struct run t;
    struct dns_result *r;
    char buf[80];

    run_init_sec(&t);
    if (t.d == NULL) {
        cleanup_sec(&t);
        return;
    }
    /* A bogus SRV RRset fails the lookup: no fallback to the (secure) absence of the other. */
    r = lookup(&t, "bad.sec.test");
    if (r != NULL) {
        EXPECT_EQ(XTP_EDNS, r->err);
        EXPECT_EQ(0, r->ncand);
        EXPECT_MSG(strstr(r->why, "_xmpp-server SRV: DNSSEC bogus") != NULL, "%s", r->why);
    }
    /* A bogus A RRset drops its target (RFC 7673 §3.2); the next target is used. */
    r = lookup(&t, "badaddr.sec.test");
    if (r != NULL) {
        EXPECT_EQ_MSG(0, r->err, "%s", r->why);
        EXPECT_EQ(2, r->ncand);
        if (r->ncand >= 1) {
            EXPECT_STR("xmpp.sec.test", r->cand[0].host);
            EXPECT_STR("[2001:db8::1:2]:5269", addr_text(&r->cand[0], buf, sizeof(buf)));
            EXPECT_EQ(1, r->cand[0].ntlsa);
        }
        EXPECT_MSG(strstr(r->why, "t1.badaddr.sec.test A: DNSSEC bogus") != NULL, "%s", r->why);
    }
    /* A bogus TLSA RRset drops its endpoint (RFC 7673 §3.4): here the only one. */
    r = lookup(&t, "badtlsa.sec.test");
    if (r != NULL) {
        EXPECT_EQ(XTP_EDNS, r->err);
        EXPECT_EQ(0, r->ncand);
        EXPECT_MSG(strstr(r->why, "_5269._tcp.t2.badtlsa.sec.test TLSA: DNSSEC bogus") != NULL,
                   "%s", r->why);
    }
    cleanup_sec(&t);
}

TEST(new_errors)
{
    uv_loop_t loop;
    char err[256];
    static const char *const bad_fwd[] = {"not-an-address", NULL};
    static const char *const bad_opt[] = {"no-such-option:", "1", NULL};
    static const char *const odd_opt[] = {"local-zone:", NULL};
    struct dns_opts o = {.trust_anchor_file = "", .forwarders = bad_fwd};

    uv_loop_init(&loop);
    err[0] = '\0';
    EXPECT(dns_new(&loop, &o, err, sizeof(err)) == NULL);
    EXPECT_MSG(strstr(err, "not-an-address") != NULL, "%s", err);

    o.forwarders = NULL;
    o.ub_options = bad_opt;
    EXPECT(dns_new(&loop, &o, err, sizeof(err)) == NULL);
    EXPECT_MSG(strstr(err, "no-such-option") != NULL, "%s", err);

    o.ub_options = odd_opt;
    EXPECT(dns_new(&loop, &o, err, sizeof(err)) == NULL);
    EXPECT_MSG(strstr(err, "no value") != NULL, "%s", err);

    o.ub_options = NULL;
    o.trust_anchor_file = "/nonexistent/root.key";
    EXPECT(dns_new(&loop, &o, err, sizeof(err)) == NULL);
    EXPECT_MSG(strstr(err, "/nonexistent/root.key") != NULL, "%s", err);

    /* A readable anchor file that holds no anchor: libunbound reads it when the context is
     * finalised, which dns_new() forces, so this fails at startup and not at the first
     * lookup. */
    {
        char path[] = "/tmp/test_dns_ta.XXXXXX";
        int fd = mkstemp(path);

        EXPECT(fd >= 0 && write(fd, "garbage\n", 8) == 8);
        if (fd >= 0)
            close(fd);
        o.trust_anchor_file = path;
        EXPECT(dns_new(&loop, &o, err, sizeof(err)) == NULL);
        EXPECT_MSG(strstr(err, "resolver settings") != NULL, "%s", err);
        unlink(path);
    }

    EXPECT_EQ(0, uv_loop_close(&loop)); /* failures leave no handle behind */
}

TEST_MAIN(merged_and_ordered, dot_target, fallback_without_srv, nxdomain, unusable_records,
          failed_srv_no_fallback, timeout, cancel_before_completion, cancel_from_callback,
          bad_domain_async, close_with_pending, dnssec_secure, dnssec_bogus, new_errors)
