/* Unit tests for metrics.c: the exposition text behind GET /metrics and the per-worker
 * shards it sums. */
#include "metrics.h"

#include <pthread.h>

#include "test.h"

static const char *const names[] = {"c2s", "s2s-in"};
static const char *const kinds[] = {"c2s", "s2s"};
static const char *const reasons[] = {"done", "timeout"};
static const char *const failures[] = {"ETLS", "EVERIFY"};
static const char *const domains[] = {"example.test", "other.test"};

static struct metrics_reg *small(size_t nshards)
{
    struct metrics_labels l = {names, kinds, 2, reasons, 2, failures, 2, domains, 2};

    return metrics_reg_new(&l, nshards);
}

/* The rendered text, NUL-terminated, in a static buffer. */
static const char *render(const struct metrics_reg *r)
{
    static char text[16384];
    struct bytes b = BYTES_INIT;

    EXPECT_EQ(0, metrics_render(r, &b));
    snprintf(text, sizeof(text), "%.*s", (int)bytes_len(&b), (const char *)bytes_data(&b));
    bytes_cleanup(&b);
    return text;
}

TEST(metrics_exact_text)
{
    struct metrics_reg *r = small(1);
    struct metrics *m = metrics_reg_shard(r, 0);
    static const char want[] =
        "# HELP xtp_sessions Live sessions by listener and kind.\n"
        "# TYPE xtp_sessions gauge\n"
        "xtp_sessions{listener=\"c2s\",kind=\"c2s\"} 1\n"
        "xtp_sessions{listener=\"s2s-in\",kind=\"s2s\"} 0\n"
        "# HELP xtp_sessions_total Sessions accepted by listener and kind.\n"
        "# TYPE xtp_sessions_total counter\n"
        "xtp_sessions_total{listener=\"c2s\",kind=\"c2s\"} 2\n"
        "xtp_sessions_total{listener=\"s2s-in\",kind=\"s2s\"} 1\n"
        "# HELP xtp_session_end_total Sessions ended, by end reason.\n"
        "# TYPE xtp_session_end_total counter\n"
        "xtp_session_end_total{reason=\"done\"} 1\n"
        "xtp_session_end_total{reason=\"timeout\"} 1\n"
        "# HELP xtp_tls_handshakes_total Completed TLS handshakes by protocol version and "
        "cipher suite.\n"
        "# TYPE xtp_tls_handshakes_total counter\n"
        "xtp_tls_handshakes_total{version=\"TLSv1.2\",cipher=\"TLS-ECDHE-ECDSA-WITH-AES-128-"
        "GCM-SHA256\"} 1\n"
        "xtp_tls_handshakes_total{version=\"TLSv1.3\",cipher=\"TLS1-3-AES-128-GCM-SHA256\"} 2\n"
        "# HELP xtp_tls_handshake_failures_total Failed TLS handshakes by reason.\n"
        "# TYPE xtp_tls_handshake_failures_total counter\n"
        "xtp_tls_handshake_failures_total{reason=\"ETLS\"} 0\n"
        "xtp_tls_handshake_failures_total{reason=\"EVERIFY\"} 1\n"
        "# HELP xtp_peer_auth_total Remote domain authentications by method and result.\n"
        "# TYPE xtp_peer_auth_total counter\n"
        "xtp_peer_auth_total{method=\"pkix\",result=\"ok\"} 1\n"
        "xtp_peer_auth_total{method=\"pkix\",result=\"fail\"} 0\n"
        "xtp_peer_auth_total{method=\"dane\",result=\"ok\"} 0\n"
        "xtp_peer_auth_total{method=\"dane\",result=\"fail\"} 0\n"
        "xtp_peer_auth_total{method=\"dialback\",result=\"ok\"} 0\n"
        "xtp_peer_auth_total{method=\"dialback\",result=\"fail\"} 1\n"
        "# HELP xtp_bytes_total Bytes read from and written to sockets, by direction.\n"
        "# TYPE xtp_bytes_total counter\n"
        "xtp_bytes_total{direction=\"from-peer\"} 100\n"
        "xtp_bytes_total{direction=\"to-peer\"} 18446744073709551615\n"
        "xtp_bytes_total{direction=\"from-backend\"} 0\n"
        "xtp_bytes_total{direction=\"to-backend\"} 7\n"
        "# HELP xtp_cert_expiry_seconds Unix time at which the domain's certificate expires "
        "(notAfter).\n"
        "# TYPE xtp_cert_expiry_seconds gauge\n"
        "xtp_cert_expiry_seconds{domain=\"other.test\"} 1798761600\n"
        "# HELP xtp_remote_cert_changes_total Remote domains seen with a certificate other "
        "than the last one.\n"
        "# TYPE xtp_remote_cert_changes_total counter\n"
        "xtp_remote_cert_changes_total 1\n";

    metrics_session_open(m, 0);
    metrics_session_open(m, 0);
    metrics_session_open(m, 1);
    metrics_session_close(m, 0, 0);
    metrics_session_close(m, 1, 1);
    metrics_tls_handshake(m, "TLSv1.3", "TLS1-3-AES-128-GCM-SHA256");
    metrics_tls_handshake(m, "TLSv1.2", "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256");
    metrics_tls_handshake(m, "TLSv1.3", "TLS1-3-AES-128-GCM-SHA256");
    metrics_tls_failure(m, 1);
    metrics_peer_auth(m, METRICS_AUTH_PKIX, METRICS_AUTH_OK);
    metrics_peer_auth(m, METRICS_AUTH_DIALBACK, METRICS_AUTH_FAIL);
    metrics_bytes(m, METRICS_FROM_PEER, 60);
    metrics_bytes(m, METRICS_FROM_PEER, 40);
    metrics_bytes(m, METRICS_TO_PEER, UINT64_MAX);
    metrics_bytes(m, METRICS_TO_BACKEND, 7);
    metrics_set_cert_expiry(r, 1, 1798761600); /* 2027-01-01; domain 0 has none */
    metrics_remote_cert_change(m);
    EXPECT_STR(want, render(r));
    metrics_reg_free(r);
    metrics_reg_free(NULL);
}

TEST(metrics_label_escaping)
{
    static const char *const odd[] = {"a\"b\\c\nd"};
    static const char *const kind[] = {"k"};
    struct metrics_labels l = {odd, kind, 1, odd, 1, NULL, 0, odd, 1};
    struct metrics_reg *r = metrics_reg_new(&l, 1);
    struct bytes b = BYTES_INIT;
    const char *text;

    EXPECT_EQ(0, metrics_escape_label(&b, "plain \\ \" \n end"));
    EXPECT_MEM("plain \\\\ \\\" \\n end", 18, bytes_data(&b), bytes_len(&b));
    bytes_cleanup(&b);
    EXPECT_EQ(0, metrics_escape_label(&b, ""));
    EXPECT_EQ(0, bytes_len(&b));

    metrics_set_cert_expiry(r, 0, -5);
    metrics_tls_handshake(metrics_reg_shard(r, 0), "v\"1", "c\\2");
    text = render(r);
    EXPECT(strstr(text, "xtp_sessions{listener=\"a\\\"b\\\\c\\nd\",kind=\"k\"} 0\n") != NULL);
    EXPECT(strstr(text, "xtp_session_end_total{reason=\"a\\\"b\\\\c\\nd\"} 0\n") != NULL);
    EXPECT(strstr(text, "xtp_cert_expiry_seconds{domain=\"a\\\"b\\\\c\\nd\"} -5\n") != NULL);
    EXPECT(strstr(text, "{version=\"v\\\"1\",cipher=\"c\\\\2\"} 1\n") != NULL);
    /* No raw newline inside any sample line: every line starts with a name or '#'. */
    for (const char *p = text; *p != '\0'; p = strchr(p, '\n') + 1)
        EXPECT_MSG(*p == '#' || strncmp(p, "xtp_", 4) == 0, "line: %.40s", p);
    metrics_reg_free(r);
}

TEST(metrics_shards_sum)
{
    struct metrics_reg *r = small(3);
    const char *text;

    for (size_t s = 0; s < 3; s++) {
        struct metrics *m = metrics_reg_shard(r, s);

        for (size_t k = 0; k <= s; k++) {
            metrics_session_open(m, 1);
            metrics_bytes(m, METRICS_FROM_BACKEND, 1000);
        }
        metrics_session_close(m, 1, 0);
        /* Each shard sees the pairs in its own order; one pair only in shard 2. */
        metrics_tls_handshake(m, s == 1 ? "TLSv1.2" : "TLSv1.3", "A");
        metrics_tls_handshake(m, s == 1 ? "TLSv1.3" : "TLSv1.2", "A");
        if (s == 2)
            metrics_tls_handshake(m, "TLSv1.3", "B");
        metrics_remote_cert_change(m);
    }
    text = render(r);
    EXPECT(strstr(text, "xtp_sessions{listener=\"s2s-in\",kind=\"s2s\"} 3\n") != NULL);
    EXPECT(strstr(text, "xtp_sessions_total{listener=\"s2s-in\",kind=\"s2s\"} 6\n") != NULL);
    EXPECT(strstr(text, "xtp_session_end_total{reason=\"done\"} 3\n") != NULL);
    EXPECT(strstr(text, "xtp_bytes_total{direction=\"from-backend\"} 6000\n") != NULL);
    EXPECT(strstr(text, "xtp_remote_cert_changes_total 3\n") != NULL);
    EXPECT(strstr(text, "xtp_tls_handshakes_total{version=\"TLSv1.2\",cipher=\"A\"} 3\n"
                        "xtp_tls_handshakes_total{version=\"TLSv1.3\",cipher=\"A\"} 3\n"
                        "xtp_tls_handshakes_total{version=\"TLSv1.3\",cipher=\"B\"} 1\n"
                        "# HELP") != NULL);
    EXPECT(strstr(text, "\"other\"") == NULL);
    metrics_reg_free(r);
}

TEST(metrics_tls_pairs_bounded)
{
    struct metrics_reg *r = small(2);
    struct metrics *m = metrics_reg_shard(r, 0);
    char cipher[80];
    const char *text;
    size_t lines = 0;

    for (int i = 0; i < METRICS_TLS_PAIRS + 5; i++) {
        snprintf(cipher, sizeof(cipher), "C%02d", i);
        metrics_tls_handshake(m, "TLSv1.3", cipher);
        metrics_tls_handshake(m, "TLSv1.3", cipher);
    }
    memset(cipher, 'x', 64);
    cipher[64] = '\0'; /* too long to keep */
    metrics_tls_handshake(metrics_reg_shard(r, 1), "TLSv1.3", cipher);
    metrics_tls_handshake(metrics_reg_shard(r, 1), "TLSv1.3-and-more", "C00");
    text = render(r);
    for (const char *p = text; (p = strstr(p, "\nxtp_tls_handshakes_total{")) != NULL; p++)
        lines++;
    EXPECT_EQ(METRICS_TLS_PAIRS + 1, lines);
    EXPECT(strstr(text, "{version=\"TLSv1.3\",cipher=\"C31\"} 2\n") != NULL);
    EXPECT(strstr(text, "cipher=\"C32\"") == NULL);
    EXPECT(strstr(text, "{version=\"other\",cipher=\"other\"} 12\n") != NULL);
    metrics_reg_free(r);
}

TEST(metrics_cert_expiry_set_and_clear)
{
    struct metrics_reg *r = small(1);

    EXPECT(strstr(render(r), "xtp_cert_expiry_seconds{") == NULL);
    metrics_set_cert_expiry(r, 0, 1700000000);
    EXPECT(strstr(render(r), "xtp_cert_expiry_seconds{domain=\"example.test\"} 1700000000\n") !=
           NULL);
    metrics_set_cert_expiry(r, 0, METRICS_NO_EXPIRY);
    EXPECT(strstr(render(r), "xtp_cert_expiry_seconds{") == NULL);
    metrics_reg_free(r);
}

TEST(metrics_empty_tables)
{
    struct metrics_labels l = {NULL, NULL, 0, NULL, 0, NULL, 0, NULL, 0};
    struct metrics_reg *r = metrics_reg_new(&l, 1);
    const char *text;

    EXPECT(metrics_reg_new(&l, 0) == NULL);
    text = render(r);
    EXPECT(strstr(text, "# TYPE xtp_sessions gauge\n# HELP xtp_sessions_total") != NULL);
    EXPECT(strstr(text, "xtp_remote_cert_changes_total 0\n") != NULL);
    metrics_reg_free(r);
}

/* Workers count on their own shards while another thread renders: nothing is lost, and what
 * a render sees never goes backwards. */
struct worker_arg {
    struct metrics *m;
    int n;
};

static void *worker_main(void *p)
{
    struct worker_arg *w = p;

    for (int i = 0; i < w->n; i++) {
        metrics_session_open(w->m, 0);
        metrics_bytes(w->m, METRICS_TO_PEER, 3);
        metrics_tls_handshake(w->m, "TLSv1.3", i % 2 ? "A" : "B");
        metrics_session_close(w->m, 0, 1);
    }
    return NULL;
}

static uint64_t value_of(const char *text, const char *sample)
{
    const char *p = strstr(text, sample);

    return p != NULL ? strtoull(p + strlen(sample), NULL, 10) : 0;
}

TEST(metrics_concurrent_shards)
{
    enum { NW = 3, N = 200000 };
    struct metrics_reg *r = small(NW);
    struct worker_arg args[NW];
    pthread_t th[NW];
    uint64_t last = 0;
    int backwards = 0;
    const char *text;

    for (int i = 0; i < NW; i++) {
        args[i] = (struct worker_arg){metrics_reg_shard(r, (size_t)i), N};
        pthread_create(&th[i], NULL, worker_main, &args[i]);
    }
    for (int k = 0; k < 50; k++) {
        uint64_t v = value_of(render(r), "xtp_bytes_total{direction=\"to-peer\"} ");

        backwards += v < last;
        last = v;
    }
    for (int i = 0; i < NW; i++)
        pthread_join(th[i], NULL);
    EXPECT_EQ(0, backwards);
    text = render(r);
    EXPECT_EQ(3ull * NW * N, value_of(text, "xtp_bytes_total{direction=\"to-peer\"} "));
    EXPECT_EQ(NW * N, value_of(text, "xtp_sessions_total{listener=\"c2s\",kind=\"c2s\"} "));
    EXPECT_EQ(NW * N, value_of(text, "xtp_session_end_total{reason=\"timeout\"} "));
    EXPECT_EQ(0, value_of(text, "xtp_sessions{listener=\"c2s\",kind=\"c2s\"} "));
    EXPECT_EQ(NW * N / 2, value_of(text, "{version=\"TLSv1.3\",cipher=\"A\"} "));
    metrics_reg_free(r);
}

TEST_MAIN(metrics_exact_text, metrics_label_escaping, metrics_shards_sum, metrics_tls_pairs_bounded,
          metrics_cert_expiry_set_and_clear, metrics_empty_tables, metrics_concurrent_shards)
