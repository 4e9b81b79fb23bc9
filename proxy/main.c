/* main.c: command line, signals, reload, privileges, the loop. No protocol logic here.
 *
 * Signals (design.md §4, issue 4):
 *   SIGHUP   reload the configuration and certificates; sessions keep the snapshot they
 *            started with, new ones get the new one; a broken file changes nothing.
 *   SIGTERM  stop accepting, let sessions finish for limits.drain_timeout, then end the rest
 *            with <system-shutdown/>.
 *   SIGINT   like SIGTERM without the grace period (Ctrl-C in `make run`).
 *   a second SIGTERM/SIGINT exits at once. */
#include <errno.h>
#include <expat.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <yaml.h>

#include "admin.h"
#include "certmem.h"
#include "cfg.h"
#include "conn.h"
#include "dialback.h"
#include "dns.h"
#include "err.h"
#include "json.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "snap.h"
#include "status_cli.h"
#include "tls.h"
#include "worker.h"

#define EXPIRY_WARN_S  (14 * 24 * 3600) /* warn when a certificate expires within 14 days */
#define EXPIRY_TICK_MS (24 * 3600 * 1000ULL)
#define DRAIN_TICK_MS  100
#define TICKET_TICK_MS (20 * 60 * 1000ULL) /* re-read tls.ticket_key_file: under its 1 h life */

static void usage(FILE *f)
{
    fprintf(f, "usage: xmpp-tls-proxy -c FILE          run with the configuration in FILE\n"
               "       xmpp-tls-proxy --check -c FILE  validate FILE, its certificates and keys\n"
               "       xmpp-tls-proxy status [-c FILE] list the live sessions (admin.listen)\n"
               "       xmpp-tls-proxy --version        print versions and exit\n");
}

static void print_version(void)
{
    printf("xmpp-tls-proxy %s\n", XTP_VERSION);
    printf("%s\n", tls_lib_version());
    printf("libuv %s\n", uv_version_string());
    printf("%s\n", XML_ExpatVersion());
    printf("libyaml %s\n", yaml_get_version_string());
}

/* Workers 1..N-1 (cfg workers:), each a thread with its own loop; worker 0 is the main
 * thread's loop, which also runs the signals, the admin listener and the timers. The main
 * thread talks to a worker only through ctl: one command at a time, and it waits for the
 * answer (reload, status) or not (stop). Nothing on the session path takes a lock. */
enum { CMD_NONE = 0, CMD_RELOAD, CMD_STATUS, CMD_STOP };

struct wrun {
    struct worker *w; /* owned */
    struct main_ctx *m;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t ctl;
    uv_timer_t drain;
    uv_mutex_t mu;
    uv_cond_t cv;
    int cmd;
    bool done;    /* the command finished */
    int start_rc; /* set once the worker bound its listeners (or failed) */
    bool started;
    struct snap *snap;       /* CMD_RELOAD: a reference for the worker */
    struct metrics *metrics; /* CMD_RELOAD: its shard of the new registry */
    struct bytes *out;       /* CMD_STATUS: its session objects, comma-separated */
    uint64_t grace_ms;       /* CMD_STOP */
    bool stop_sent;          /* main thread: no command after CMD_STOP (ctl may be closed) */
};

struct main_ctx {
    struct worker *w;  /* worker 0 */
    struct wrun *runs; /* workers 1..nruns */
    size_t nruns;
    unsigned total_live; /* sessions of every worker (atomic) */
    const char *path;
    uv_signal_t sigint, sigterm, sighup;
    uv_timer_t drain, expiry, tickets;
    int signals;
    bool listeners_up;
    struct dialback dialback; /* s2s: the XEP-0185 secret */
    struct metrics_reg *reg;  /* /metrics */
    struct admin *admin;      /* NULL without admin.listen */
};

/* ---- metrics ----------------------------------------------------------------------------------
 */

static void set_expiry(struct metrics_reg *reg, const struct cfg *cfg,
                       const struct tls_server *tls);

static struct metrics_reg *metrics_for(const struct cfg *cfg, const struct tls_server *tls,
                                       unsigned nshards)
{
    static const char *const failures[] = CONN_TLS_FAILURES;
    const char *names[256], *kinds[256], *reasons[CONN_END__COUNT];
    const char **domains = calloc(cfg->ndomains, sizeof(*domains));
    struct metrics_labels l = {0};
    struct metrics_reg *reg;

    if (domains == NULL)
        return NULL;
    for (size_t i = 0; i < cfg->nlisteners && i < 256; i++) {
        names[i] = cfg->listeners[i].name;
        kinds[i] = cfg_kind_name(cfg->listeners[i].kind);
    }
    for (size_t i = 0; i < CONN_END__COUNT; i++)
        reasons[i] = conn_end_str((enum conn_end)i);
    for (size_t i = 0; i < cfg->ndomains; i++)
        domains[i] = cfg->domains[i].name;
    l.listener_names = names;
    l.listener_kinds = kinds;
    l.nlisteners = cfg->nlisteners;
    l.end_reasons = reasons;
    l.nend_reasons = CONN_END__COUNT;
    l.tls_failures = failures;
    l.ntls_failures = sizeof(failures) / sizeof(failures[0]);
    l.domains = domains;
    l.ndomains = cfg->ndomains;
    reg = metrics_reg_new(&l, nshards); /* labels are copied; one shard per worker */
    if (reg != NULL)
        set_expiry(reg, cfg, tls);
    free(domains);
    return reg;
}

static void set_expiry(struct metrics_reg *reg, const struct cfg *cfg, const struct tls_server *tls)
{
    time_t now = time(NULL);

    for (size_t i = 0; i < cfg->ndomains; i++) {
        long long left = tls_server_cert_expiry(tls, cfg->domains[i].name);

        metrics_set_cert_expiry(reg, i, left != 0 ? (int64_t)now + left : METRICS_NO_EXPIRY);
    }
}

static bool same_domains(const struct cfg *a, const struct cfg *b)
{
    if (a->ndomains != b->ndomains)
        return false;
    for (size_t i = 0; i < a->ndomains; i++)
        if (strcmp(a->domains[i].name, b->domains[i].name) != 0)
            return false;
    return true;
}

static int render_metrics(void *arg, struct bytes *out)
{
    struct main_ctx *m = arg;

    return metrics_render(m->reg, out);
}

static int post_wait(struct wrun *r, int cmd); /* below */
static void post_stop(struct wrun *r, uint64_t grace_ms);

static int render_status(void *arg, struct bytes *out)
{
    struct main_ctx *m = arg;
    struct bytes more = BYTES_INIT, part = BYTES_INIT;
    int rc = 0;

    for (size_t i = 0; i < m->nruns && rc == 0; i++) {
        if (m->runs[i].stop_sent)
            continue;
        bytes_cleanup(&part);
        m->runs[i].out = &part;
        if (post_wait(&m->runs[i], CMD_STATUS) != 0)
            continue; /* a worker that does not answer within 2 s is left out */
        if (bytes_len(&part) > 0 && bytes_len(&more) > 0)
            rc = bytes_append(&more, ",", 1);
        if (rc == 0)
            rc = bytes_append(&more, bytes_data(&part), bytes_len(&part));
    }
    if (rc == 0)
        rc = conn_status_json(m->w, out, &more);
    bytes_cleanup(&part);
    bytes_cleanup(&more);
    return rc;
}

static bool healthy(void *arg)
{
    struct main_ctx *m = arg;

    return m->listeners_up && !m->w->stopping;
}

static const struct admin_ops admin_ops = {render_metrics, render_status, healthy};

/* ---- warnings an operator must see ------------------------------------------------------------
 */

/* Certificates that expire within 14 days: at start, after a reload, and daily. */
static void check_expiry(const struct snap *snap)
{
    const struct cfg *cfg = snap->cfg;

    for (size_t i = 0; i < cfg->ndomains; i++) {
        long long left = tls_server_cert_expiry(snap->tls, cfg->domains[i].name);

        if (left < 0)
            log_msg(LOG_ERROR, "domain=%s certificate %s has EXPIRED (%lld days ago)",
                    cfg->domains[i].name, cfg->domains[i].cert, -left / 86400);
        else if (left > 0 && left < EXPIRY_WARN_S)
            log_msg(LOG_WARN, "domain=%s certificate %s expires in %lld days", cfg->domains[i].name,
                    cfg->domains[i].cert, left / 86400);
    }
}

static void expiry_cb(uv_timer_t *t)
{
    struct main_ctx *m = t->data;

    check_expiry(m->w->snap);
}

/* Shared ticket keys: pick up a rotated tls.ticket_key_file, and keep the key from expiring. */
static void tickets_cb(uv_timer_t *t)
{
    struct main_ctx *m = t->data;
    char err[512];

    if (tls_server_rotate(m->w->snap->tls, m->w->snap->cfg, err, sizeof(err)) != 0)
        log_msg(LOG_ERROR, "ticket keys not rotated (resumption across instances may fail): %s",
                err);
}

/* Descriptors: a session holds two (peer and backend); listeners, the admin socket, the
 * resolver, the loops and logs need a few dozen more. Raises the soft RLIMIT_NOFILE towards
 * the hard one when limits.max_connections needs it (allowed without privileges; systemd's
 * default soft limit is 1024), and warns when even the hard limit is short: past it, accept()
 * fails with EMFILE and new clients wait in the backlog. */
#define FD_SPARE 64

static void check_fd_limit(const struct cfg *cfg)
{
    rlim_t need = (rlim_t)cfg->max_connections * 2 + FD_SPARE, old;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return;
    old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (rl.rlim_cur > old && setrlimit(RLIMIT_NOFILE, &rl) == 0)
        log_msg(LOG_INFO,
                "raised the open-file limit from %llu to %llu for limits.max_connections %u",
                (unsigned long long)old, (unsigned long long)rl.rlim_cur, cfg->max_connections);
    else
        rl.rlim_cur = old;
    if (rl.rlim_cur < need)
        log_msg(LOG_WARN,
                "limits.max_connections %u needs about %llu open files (2 per session) but the "
                "limit is %llu (hard %llu): past about %llu sessions new clients cannot be "
                "accepted; raise LimitNOFILE (or ulimit -n), or lower limits.max_connections",
                cfg->max_connections, (unsigned long long)need, (unsigned long long)rl.rlim_cur,
                (unsigned long long)rl.rlim_max,
                (unsigned long long)(rl.rlim_cur > FD_SPARE ? (rl.rlim_cur - FD_SPARE) / 2 : 0));
}

/* Private keys readable by group or others (a key in the chain file counts too). */
static void check_key_modes(const struct cfg *cfg)
{
    for (size_t i = 0; i < cfg->ndomains; i++) {
        struct stat st;

        if (stat(cfg->domains[i].key, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
            log_msg(LOG_WARN,
                    "domain=%s private key %s has mode %04o: it should not be readable by group "
                    "or others (chmod 600)",
                    cfg->domains[i].name, cfg->domains[i].key, (unsigned)(st.st_mode & 07777));
    }
}

/* Bind, read keys, then drop to user/group (issue 4). 0, or 1 after a message. */
static int drop_privileges(const struct cfg *cfg)
{
    struct passwd *pw = NULL;
    struct group *gr = NULL;
    gid_t gid;

    if (geteuid() != 0) {
        if (cfg->user != NULL || cfg->group != NULL)
            log_msg(LOG_WARN, "user/group are set but the proxy does not run as root: ignored");
        return 0;
    }
    if (cfg->user == NULL) {
        log_msg(LOG_WARN,
                "running as root: set user (and group) in %s so that the proxy drops "
                "its privileges after binding (shown in /status)",
                cfg->path);
        return 0;
    }
    if ((pw = getpwnam(cfg->user)) == NULL) {
        fprintf(stderr, "%s:%d: user '%s' does not exist\n", cfg->path, cfg->user_line, cfg->user);
        return 1;
    }
    gid = pw->pw_gid;
    if (cfg->group != NULL) {
        if ((gr = getgrnam(cfg->group)) == NULL) {
            fprintf(stderr, "%s:%d: group '%s' does not exist\n", cfg->path, cfg->group_line,
                    cfg->group);
            return 1;
        }
        gid = gr->gr_gid;
    }
    if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(pw->pw_uid) != 0 || setuid(0) == 0) {
        fprintf(stderr, "xmpp-tls-proxy: cannot drop privileges to %s: %s\n", cfg->user,
                strerror(errno));
        return 1;
    }
    log_msg(LOG_INFO, "dropped privileges to user=%s uid=%u gid=%u", cfg->user,
            (unsigned)pw->pw_uid, (unsigned)gid);
    return 0;
}

/* ---- s2s: the secret, the certificate memory, the resolver --------------------------------- */

/* The process-wide s2s parts, shared read-only (the secret) or under a lock (the certificate
 * memory) by every worker. 0, or 1 with a message on stderr. */
static int s2s_setup(struct main_ctx *m, const struct cfg *cfg)
{
    struct worker *w = m->w;
    char err[512];

    if (!cfg_has_kind(cfg, CFG_KIND_S2S) && !cfg_has_kind(cfg, CFG_KIND_S2S_OUT))
        return 0;
    if (dialback_load(&m->dialback, cfg->dialback_secret_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: s2s.dialback_secret_file: %s\n", cfg->path, err);
        return 1;
    }
    w->dialback = &m->dialback;
    w->certmem = certmem_open(cfg->state_file, err, sizeof(err));
    if (w->certmem == NULL) {
        fprintf(stderr, "%s: s2s.state_file: %s\n", cfg->path, err);
        return 1;
    }
    return 0;
}

/* A worker's own resolver (libunbound on its loop), for s2s-out. 0, or 1 after a message. */
static int dns_setup(struct worker *w, const struct cfg *cfg)
{
    char err[512], fwd[8][80], ubname[32][64];
    const char *fwdp[9] = {0}, *ubopts[65] = {0};
    struct dns_opts o = {0};

    if (!cfg_has_kind(cfg, CFG_KIND_S2S_OUT))
        return 0;
    /* resolve.nameservers "ip:port" becomes libunbound's "ip@port". */
    for (size_t i = 0; i < cfg->nnameservers && i < 8; i++) {
        const struct sockaddr_storage *ss = &cfg->nameservers[i].ss;
        char ip[64] = "";
        int port;

        if (ss->ss_family == AF_INET6) {
            uv_ip6_name((const struct sockaddr_in6 *)ss, ip, sizeof(ip));
            port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
        } else {
            uv_ip4_name((const struct sockaddr_in *)ss, ip, sizeof(ip));
            port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
        }
        snprintf(fwd[i], sizeof(fwd[i]), "%s@%d", ip, port);
        fwdp[i] = fwd[i];
    }
    o.forwarders = cfg->nnameservers > 0 ? fwdp : NULL;
    o.trust_anchor_file = cfg->dnssec ? cfg->trust_anchor_file : "";
    o.timeout_ms = cfg->resolve_timeout_ms;
    /* "name: value" -> the pairs ub_ctx_set_option() takes ("name:", "value"). */
    for (size_t i = 0; i < cfg->nunbound_options && i < 32; i++) {
        const char *opt = cfg->unbound_options[i], *colon = strstr(opt, ": ");

        snprintf(ubname[i], sizeof(ubname[i]), "%.*s:", (int)(colon - opt), opt);
        ubopts[2 * i] = ubname[i];
        ubopts[2 * i + 1] = colon + 2;
    }
    o.ub_options = cfg->nunbound_options > 0 ? ubopts : NULL;
    w->dns = dns_new(w->loop, &o, err, sizeof(err));
    if (w->dns == NULL) {
        fprintf(stderr, "%s: resolve: %s\n", cfg->path, err);
        return 1;
    }
    return 0;
}

/* ---- reload (SIGHUP) ----------------------------------------------------------------------------
 */

/* The listeners are bound sockets shared by sessions: a reload keeps them as they are, so the
 * new file must name the same ones (name, address, kind, tls). */
static const char *listeners_differ(const struct cfg *a, const struct cfg *b)
{
    if (a->nlisteners != b->nlisteners)
        return "the number of listeners changed";
    if (a->workers != b->workers)
        return "workers changed";
    for (size_t i = 0; i < a->nlisteners; i++) {
        const struct cfg_listener *x = &a->listeners[i], *y = &b->listeners[i];

        if (strcmp(x->name, y->name) != 0 || strcmp(x->listen.text, y->listen.text) != 0 ||
            x->kind != y->kind || x->tls != y->tls || x->allow_nonlocal != y->allow_nonlocal)
            return "a listener changed";
    }
    if (a->has_admin != b->has_admin ||
        (a->has_admin && strcmp(a->admin_listen.text, b->admin_listen.text) != 0))
        return "admin.listen changed";
    return NULL;
}

static void reload(struct main_ctx *m)
{
    struct worker *w = m->w;
    char err[1024];
    const char *why;
    struct cfg *cfg;
    struct tls_server *tls;
    struct snap *snap;
    struct metrics_reg *reg;

    notify_reloading();
    cfg = cfg_load(m->path, err, sizeof(err));
    if (cfg == NULL) {
        log_msg(LOG_ERROR, "reload failed, keeping the running configuration: %s", err);
        notify_send("READY=1\nSTATUS=reload failed: configuration error");
        return;
    }
    if ((why = listeners_differ(w->snap->cfg, cfg)) != NULL) {
        log_msg(LOG_ERROR,
                "reload refused, keeping the running configuration: %s (listeners "
                "change only with a restart)",
                why);
        cfg_unref(cfg);
        notify_send("READY=1\nSTATUS=reload refused: listeners changed");
        return;
    }
    tls = tls_server_new(cfg, err, sizeof(err));
    if (tls == NULL) {
        log_msg(LOG_ERROR, "reload failed, keeping the running configuration: %s", err);
        cfg_unref(cfg);
        notify_send("READY=1\nSTATUS=reload failed: certificate or key error");
        return;
    }
    /* The metrics registry stays, so counters and the sessions gauge go on, unless the
     * domains changed (xtp_cert_expiry_seconds is labelled by domain): then a new one starts,
     * and every worker counts its live sessions into it (CMD_RELOAD). */
    if (same_domains(w->snap->cfg, cfg)) {
        reg = NULL;
        set_expiry(m->reg, cfg, tls);
    } else if ((reg = metrics_for(cfg, tls, cfg->workers)) == NULL) {
        log_msg(LOG_ERROR, "reload failed: out of memory");
        tls_server_free(tls);
        cfg_unref(cfg);
        return;
    }
    snap = snap_new(cfg, tls);
    if (snap == NULL) {
        log_msg(LOG_ERROR, "reload failed: out of memory");
        metrics_reg_free(reg);
        tls_server_free(tls);
        cfg_unref(cfg);
        return;
    }
    /* Sessions hold their own snapshot; new ones take this one. */
    for (size_t i = 0; i < m->nruns; i++) {
        struct wrun *r = &m->runs[i];

        r->snap = snap_ref(snap);
        r->metrics = reg != NULL ? metrics_reg_shard(reg, i + 1) : NULL;
        if (post_wait(r, CMD_RELOAD) != 0) {
            /* Cannot happen with a live loop; without the answer the old registry stays. */
            log_msg(LOG_ERROR, "worker %zu did not take the new configuration", i + 1);
            reg = NULL;
        }
    }
    snap_unref(w->snap);
    w->snap = snap;
    if (reg != NULL) {
        w->metrics = metrics_reg_shard(reg, 0);
        conn_count_live(w);
        metrics_reg_free(m->reg);
        m->reg = reg;
    }
    log_setup(cfg->log_level, cfg->log_format);
    if (cfg->s2s_verify != CFG_VERIFY_REQUIRED || cfg->nremotes > 0)
        log_msg(LOG_DEBUG, "s2s policy reloaded (s2s.dialback_secret_file, s2s.state_file and "
                           "resolve.* apply from the next start)");
    check_key_modes(cfg);
    check_fd_limit(cfg);
    check_expiry(snap);
    log_msg(LOG_INFO,
            "reloaded %s (%zu domains, %zu listeners; %u sessions keep their old "
            "configuration)",
            cfg->path, cfg->ndomains, cfg->nlisteners, w->live);
    notify_send("READY=1\nSTATUS=running");
}

/* ---- stopping -----------------------------------------------------------------------------------
 */

static void close_main_handles(struct main_ctx *m)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&m->sigint, (uv_handle_t *)&m->sigterm,
                         (uv_handle_t *)&m->sighup, (uv_handle_t *)&m->drain,
                         (uv_handle_t *)&m->expiry, (uv_handle_t *)&m->tickets};

    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        if (hs[i]->type != UV_UNKNOWN_HANDLE && !uv_is_closing(hs[i]))
            uv_close(hs[i], NULL);
    if (m->admin != NULL)
        admin_stop(m->admin, NULL, NULL);
    m->admin = NULL;
    dns_close(m->w->dns, NULL, NULL);
    m->w->dns = NULL;
    conn_sweep_stop(m->w);
}

/* During the drain: once the last session is gone, let the loop end. */
static void drain_cb(uv_timer_t *t)
{
    struct main_ctx *m = t->data;

    if (m->w->live > 0 && uv_now(m->w->loop) < m->w->drain_deadline)
        return;
    if (m->w->live > 0) {
        log_msg(LOG_INFO,
                "limits.drain_timeout reached: closing %u sessions with "
                "<system-shutdown/>",
                m->w->live);
        conn_close_all(m->w); /* they end within the close linger */
        m->w->drain_deadline = UINT64_MAX;
        return;
    }
    close_main_handles(m);
}

static void begin_stop(struct main_ctx *m, uint64_t grace_ms)
{
    struct worker *w = m->w;

    w->stopping = true;
    notify_send("STOPPING=1");
    for (size_t i = 0; i < w->nlsn; i++)
        listener_stop(w->lsn[i]);
    w->nlsn = 0;
    uv_timer_stop(&m->expiry);
    uv_timer_stop(&m->tickets);
    conn_sweep_stop(w);
    for (size_t i = 0; i < m->nruns; i++)
        post_stop(&m->runs[i], grace_ms);
    if (grace_ms == 0) {
        conn_close_all(w); /* cancels the sessions' lookups before the resolver goes */
        w->drain_deadline = UINT64_MAX;
    } else {
        log_msg(LOG_INFO, "draining %u sessions for up to %llums (limits.drain_timeout)", w->live,
                (unsigned long long)grace_ms);
        w->drain_deadline = uv_now(w->loop) + grace_ms;
    }
    uv_timer_start(&m->drain, drain_cb, 0, DRAIN_TICK_MS);
}

static void signal_cb(uv_signal_t *h, int signum)
{
    struct main_ctx *m = h->data;

    if (signum == SIGHUP) {
        if (!m->w->stopping)
            reload(m);
        return;
    }
    if (++m->signals > 1) {
        log_msg(LOG_WARN, "second signal %d: exiting now", signum);
        exit(1);
    }
    log_msg(LOG_INFO, "signal %d: no new sessions", signum);
    begin_stop(m, signum == SIGTERM ? m->w->snap->cfg->drain_timeout_ms : 0);
}

/* ---- workers 1..N-1 -----------------------------------------------------------------------------
 */

/* Sends r a command and waits (2 s at most) for it to finish. 0, or -ETIMEDOUT. */
static int post_wait(struct wrun *r, int cmd)
{
    int rc = 0;

    uv_mutex_lock(&r->mu);
    r->cmd = cmd;
    r->done = false;
    uv_async_send(&r->ctl);
    while (!r->done && rc == 0)
        rc = uv_cond_timedwait(&r->cv, &r->mu, 2000ULL * 1000 * 1000);
    r->cmd = CMD_NONE;
    uv_mutex_unlock(&r->mu);
    return rc == 0 ? 0 : -ETIMEDOUT;
}

static void worker_drain_cb(uv_timer_t *t);

static void worker_close(struct wrun *r)
{
    if (!uv_is_closing((uv_handle_t *)&r->ctl))
        uv_close((uv_handle_t *)&r->ctl, NULL);
    if (!uv_is_closing((uv_handle_t *)&r->drain))
        uv_close((uv_handle_t *)&r->drain, NULL);
    conn_sweep_stop(r->w);
    dns_close(r->w->dns, NULL, NULL);
    r->w->dns = NULL;
}

/* Stops accepting on this worker and drains it (like begin_stop() for worker 0). */
static void worker_stop(struct wrun *r, uint64_t grace_ms)
{
    struct worker *w = r->w;

    w->stopping = true;
    for (size_t i = 0; i < w->nlsn; i++)
        listener_stop(w->lsn[i]);
    w->nlsn = 0;
    conn_sweep_stop(w);
    if (grace_ms == 0) {
        conn_close_all(w);
        w->drain_deadline = UINT64_MAX;
    } else {
        w->drain_deadline = uv_now(w->loop) + grace_ms;
    }
    uv_timer_start(&r->drain, worker_drain_cb, 0, DRAIN_TICK_MS);
}

static void worker_drain_cb(uv_timer_t *t)
{
    struct wrun *r = t->data;
    struct worker *w = r->w;

    if (w->live > 0 && uv_now(w->loop) < w->drain_deadline)
        return;
    if (w->live > 0) {
        conn_close_all(w);
        w->drain_deadline = UINT64_MAX;
        return;
    }
    worker_close(r);
}

/* Runs on the worker's thread: the main thread's command. */
static void ctl_cb(uv_async_t *a)
{
    struct wrun *r = a->data;
    struct worker *w = r->w;
    struct json j;

    uv_mutex_lock(&r->mu);
    switch (r->cmd) {
    case CMD_RELOAD:
        snap_unref(w->snap);
        w->snap = r->snap; /* the reference the main thread took for us */
        if (r->metrics != NULL) {
            w->metrics = r->metrics;
            conn_count_live(w);
        }
        break;
    case CMD_STATUS:
        json_init(&j, r->out);
        json_array_begin(&j);
        conn_status_sessions(w, &j);
        json_array_end(&j);
        if (json_finish(&j) == 0 && bytes_len(r->out) >= 2) {
            /* "[a,b]" -> "a,b": main.c splices the objects into its own array */
            bytes_consume(r->out, 1);
            r->out->len--;
        }
        break;
    case CMD_STOP:
        if (!w->stopping)
            worker_stop(r, r->grace_ms);
        break;
    default:
        break;
    }
    r->done = true;
    uv_cond_signal(&r->cv);
    uv_mutex_unlock(&r->mu);
}

static void worker_main(void *arg)
{
    struct wrun *r = arg;
    struct worker *w = r->w;
    const struct cfg *cfg = w->snap->cfg;
    int rc = 0;

    uv_loop_init(&r->loop);
    w->loop = &r->loop;
    uv_async_init(&r->loop, &r->ctl, ctl_cb);
    uv_timer_init(&r->loop, &r->drain);
    r->ctl.data = r->drain.data = r;
    rc = dns_setup(w, cfg);
    for (size_t i = 0; rc == 0 && i < cfg->nlisteners; i++) {
        if (listener_start(w, &cfg->listeners[i], &w->lsn[w->nlsn]) != 0)
            rc = 1;
        else
            w->nlsn++;
    }
    uv_mutex_lock(&r->mu);
    r->start_rc = rc;
    r->started = true;
    uv_cond_signal(&r->cv);
    uv_mutex_unlock(&r->mu);
    if (rc != 0) {
        for (size_t i = 0; i < w->nlsn; i++)
            listener_stop(w->lsn[i]);
        worker_close(r);
    } else {
        conn_sweep_start(w);
    }
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
}

/* Starts workers 1..n-1 and waits until each has bound its listeners. 0 or 1. */
static int start_workers(struct main_ctx *m, struct snap *snap, unsigned n)
{
    const struct cfg *cfg = snap->cfg;
    int rc = 0;

    if (n <= 1)
        return 0;
    m->runs = calloc(n - 1, sizeof(*m->runs));
    if (m->runs == NULL)
        return 1;
    for (unsigned i = 1; i < n && rc == 0; i++) {
        struct wrun *r = &m->runs[i - 1];
        struct worker *w = calloc(1, sizeof(*w));

        if (w == NULL || (w->lsn = calloc(cfg->nlisteners, sizeof(*w->lsn))) == NULL) {
            free(w);
            return 1;
        }
        *w = (struct worker){.lsn = w->lsn,
                             .index = i,
                             .nworkers = n,
                             .next_id = i,
                             .total_live = &m->total_live,
                             .snap = snap_ref(snap),
                             .metrics = metrics_reg_shard(m->reg, i),
                             .dialback = m->w->dialback,
                             .certmem = m->w->certmem};
        r->w = w;
        r->m = m;
        uv_mutex_init(&r->mu);
        uv_cond_init(&r->cv);
        if (uv_thread_create(&r->thread, worker_main, r) != 0) {
            snap_unref(w->snap);
            free(w->lsn);
            free(w);
            r->w = NULL;
            return 1;
        }
        m->nruns++;
        uv_mutex_lock(&r->mu);
        while (!r->started)
            uv_cond_wait(&r->cv, &r->mu);
        rc = r->start_rc;
        uv_mutex_unlock(&r->mu);
    }
    return rc;
}

/* Tells worker r to stop accepting and drain for grace_ms; does not wait. */
static void post_stop(struct wrun *r, uint64_t grace_ms)
{
    if (r->stop_sent)
        return;
    r->stop_sent = true;
    uv_mutex_lock(&r->mu);
    r->grace_ms = grace_ms;
    r->cmd = CMD_STOP;
    uv_async_send(&r->ctl);
    uv_mutex_unlock(&r->mu);
}

/* After the main loop: the workers finish their drains, then their threads end. */
static void join_workers(struct main_ctx *m, uint64_t grace_ms)
{
    for (size_t i = 0; i < m->nruns; i++)
        post_stop(&m->runs[i], grace_ms);
    for (size_t i = 0; i < m->nruns; i++) {
        struct wrun *r = &m->runs[i];

        uv_thread_join(&r->thread);
        for (size_t k = 0; k < WORKER_TICKETS; k++)
            tls_ticket_free(r->w->tickets[k].ticket);
        snap_unref(r->w->snap);
        free(r->w->lsn);
        free(r->w);
        uv_mutex_destroy(&r->mu);
        uv_cond_destroy(&r->cv);
    }
    free(m->runs);
    m->runs = NULL;
    m->nruns = 0;
}

/* ---- running ------------------------------------------------------------------------------------
 */

static int run(struct main_ctx *m, struct snap *snap)
{
    struct worker *w = calloc(1, sizeof(*w));
    const struct cfg *cfg = snap->cfg;
    char err[512];
    int rc = 0;

    if (w == NULL || (w->lsn = calloc(cfg->nlisteners, sizeof(*w->lsn))) == NULL) {
        fprintf(stderr, "xmpp-tls-proxy: out of memory\n");
        free(w);
        return 1;
    }
    check_fd_limit(cfg);
    w->loop = uv_default_loop();
    w->snap = snap;
    w->nworkers = cfg->workers;
    w->total_live = &m->total_live;
    m->w = w;
    m->reg = metrics_for(cfg, snap->tls, cfg->workers);
    if (m->reg == NULL) {
        fprintf(stderr, "xmpp-tls-proxy: out of memory\n");
        rc = 1;
    } else {
        w->metrics = metrics_reg_shard(m->reg, 0);
        rc = s2s_setup(m, cfg);
    }
    if (rc == 0)
        rc = dns_setup(w, cfg);
    for (size_t i = 0; rc == 0 && i < cfg->nlisteners; i++) {
        if (listener_start(w, &cfg->listeners[i], &w->lsn[w->nlsn]) != 0) {
            rc = 1;
            break;
        }
        w->nlsn++;
    }
    if (rc == 0 && start_workers(m, snap, cfg->workers) != 0) {
        log_msg(LOG_ERROR, "cannot start %u workers", cfg->workers);
        rc = 1;
    }
    if (rc == 0 && cfg->has_admin) {
        m->admin = admin_start(w->loop, (const struct sockaddr *)&cfg->admin_listen.ss, &admin_ops,
                               m, err, sizeof(err));
        if (m->admin == NULL) {
            log_msg(LOG_ERROR, "admin.listen %s: %s", cfg->admin_listen.text, err);
            rc = 1;
        } else {
            log_msg(LOG_INFO, "admin listening on %s (/metrics, /status, /healthz)",
                    cfg->admin_listen.text);
        }
    }
    if (rc == 0)
        rc = drop_privileges(cfg);
    if (rc == 0) {
        m->listeners_up = true;
        signal(SIGPIPE, SIG_IGN);
        uv_signal_init(w->loop, &m->sigint);
        uv_signal_init(w->loop, &m->sigterm);
        uv_signal_init(w->loop, &m->sighup);
        uv_timer_init(w->loop, &m->drain);
        uv_timer_init(w->loop, &m->expiry);
        uv_timer_init(w->loop, &m->tickets);
        m->sigint.data = m->sigterm.data = m->sighup.data = m;
        m->drain.data = m->expiry.data = m->tickets.data = m;
        uv_timer_start(&m->tickets, tickets_cb, TICKET_TICK_MS, TICKET_TICK_MS);
        uv_signal_start(&m->sigint, signal_cb, SIGINT);
        uv_signal_start(&m->sigterm, signal_cb, SIGTERM);
        uv_signal_start(&m->sighup, signal_cb, SIGHUP);
        check_key_modes(cfg);
        check_expiry(snap);
        uv_timer_start(&m->expiry, expiry_cb, EXPIRY_TICK_MS, EXPIRY_TICK_MS);
        conn_sweep_start(w);
        log_msg(LOG_INFO,
                "xmpp-tls-proxy %s running with %s (%zu domains, %zu listeners, %u workers)",
                XTP_VERSION, cfg->path, cfg->ndomains, cfg->nlisteners, cfg->workers);
        notify_send("READY=1\nSTATUS=running");
    } else {
        for (size_t i = 0; i < w->nlsn; i++)
            listener_stop(w->lsn[i]);
        if (m->admin != NULL)
            admin_stop(m->admin, NULL, NULL);
        m->admin = NULL;
        dns_close(w->dns, NULL, NULL);
        w->dns = NULL;
    }
    uv_run(w->loop, UV_RUN_DEFAULT);
    join_workers(m, 0); /* they stopped with worker 0 (begin_stop); at once after a failure */
    if (rc == 0)
        log_msg(LOG_INFO, "stopped");
    uv_loop_close(w->loop);
    for (size_t i = 0; i < WORKER_TICKETS; i++)
        tls_ticket_free(w->tickets[i].ticket);
    if (w->certmem != NULL && certmem_flush(w->certmem) != 0)
        log_msg(LOG_WARN, "cannot write s2s.state_file %s", w->snap->cfg->state_file);
    certmem_free(w->certmem);
    metrics_reg_free(m->reg);
    snap_unref(w->snap);
    free(w->lsn);
    free(w);
    return rc;
}

/* `xmpp-tls-proxy status [-c FILE]`: the live sessions, from GET /status on admin.listen. */
static int status_main(const char *path)
{
    char err[1024];
    struct cfg *cfg = cfg_load(path, err, sizeof(err));
    int rc;

    if (cfg == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (!cfg->has_admin) {
        fprintf(stderr,
                "xmpp-tls-proxy status: %s has no admin.listen: the proxy serves /status "
                "only when it is set\n",
                path);
        cfg_unref(cfg);
        return 1;
    }
    rc = status_cli_run(cfg->admin_listen.text, stdout);
    cfg_unref(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    struct main_ctx m = {0};
    const char *path = NULL;
    bool check = false, status = false;
    char err[1024];
    struct cfg *cfg;
    struct tls_server *tls;
    struct snap *snap;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--check") == 0 || strcmp(argv[i], "--check-config") == 0) {
            check = true;
        } else if (i == 1 && strcmp(argv[i], "status") == 0) {
            status = true;
        } else if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
            print_version();
            return 0;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "xmpp-tls-proxy: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (status)
        return status_main(path != NULL ? path : "/etc/xmpp-tls-proxy/proxy.yaml");
    if (path == NULL) {
        usage(stderr);
        return 2;
    }
    if (tls_global_init() != 0) {
        fprintf(stderr, "xmpp-tls-proxy: cannot initialise the crypto library\n");
        return 1;
    }
    cfg = cfg_load(path, err, sizeof(err));
    if (cfg == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    tls = tls_server_new(cfg, err, sizeof(err));
    if (tls == NULL) {
        fprintf(stderr, "%s\n", err);
        cfg_unref(cfg);
        return 1;
    }
    if (check) {
        printf("%s: OK (%zu domains, %zu listeners)\n", path, cfg->ndomains, cfg->nlisteners);
        tls_server_free(tls);
        cfg_unref(cfg);
        return 0;
    }
    log_setup(cfg->log_level, cfg->log_format);
    snap = snap_new(cfg, tls);
    if (snap == NULL) {
        fprintf(stderr, "xmpp-tls-proxy: out of memory\n");
        tls_server_free(tls);
        cfg_unref(cfg);
        return 1;
    }
    m.path = path;
    return run(&m, snap);
}
