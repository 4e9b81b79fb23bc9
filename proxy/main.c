/* main.c: command line, signals, the loop. No protocol logic here. */
#include <errno.h>
#include <expat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <yaml.h>

#include "certmem.h"
#include "cfg.h"
#include "conn.h"
#include "dialback.h"
#include "dns.h"
#include "err.h"
#include "listener.h"
#include "log.h"
#include "snap.h"
#include "tls.h"
#include "worker.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: xmpp-tls-proxy -c FILE        run with the configuration in FILE\n"
               "       xmpp-tls-proxy --check -c FILE  validate FILE, its certificates and keys\n"
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

struct main_ctx {
    struct worker *w;
    uv_signal_t sigint, sigterm;
    int signals;
    struct dialback dialback; /* s2s: the XEP-0185 secret */
};

static void stop_worker(struct worker *w)
{
    w->stopping = true;
    for (size_t i = 0; i < w->nlsn; i++)
        listener_stop(w->lsn[i]);
    w->nlsn = 0;
    conn_close_all(w); /* cancels the sessions' lookups before the resolver goes */
    dns_close(w->dns, NULL, NULL);
    w->dns = NULL;
}

/* The s2s parts: the dialback secret and the certificate memory for both s2s kinds, the
 * resolver for s2s-out. 0, or 1 with a message on stderr. */
static int s2s_setup(struct main_ctx *m, const struct cfg *cfg)
{
    struct worker *w = m->w;
    char err[512], fwd[8][80];
    const char *fwdp[9] = {0};
    struct dns_opts o = {0};

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
    o.trust_anchor_file = cfg->trust_anchor_file;
    o.timeout_ms = cfg->resolve_timeout_ms;
    w->dns = dns_new(w->loop, &o, err, sizeof(err));
    if (w->dns == NULL) {
        fprintf(stderr, "%s: resolve: %s\n", cfg->path, err);
        return 1;
    }
    return 0;
}

static void signal_cb(uv_signal_t *h, int signum)
{
    struct main_ctx *m = h->data;

    if (++m->signals > 1) {
        log_msg(LOG_WARN, "second signal %d: exiting now", signum);
        exit(1);
    }
    log_msg(LOG_INFO, "signal %d: closing listeners and sessions", signum);
    stop_worker(m->w);
    /* The loop ends once the last session has flushed and closed. */
    uv_close((uv_handle_t *)&m->sigint, NULL);
    uv_close((uv_handle_t *)&m->sigterm, NULL);
}

static int run(struct snap *snap)
{
    struct main_ctx m = {0};
    struct worker *w = calloc(1, sizeof(*w));
    const struct cfg *cfg = snap->cfg;
    int rc = 0;

    if (w == NULL || (w->lsn = calloc(cfg->nlisteners, sizeof(*w->lsn))) == NULL) {
        fprintf(stderr, "xmpp-tls-proxy: out of memory\n");
        free(w);
        return 1;
    }
    w->loop = uv_default_loop();
    w->snap = snap;
    m.w = w;
    rc = s2s_setup(&m, cfg);
    for (size_t i = 0; rc == 0 && i < cfg->nlisteners; i++) {
        if (listener_start(w, &cfg->listeners[i], &w->lsn[w->nlsn]) != 0) {
            rc = 1;
            break;
        }
        w->nlsn++;
    }
    if (rc == 0) {
        signal(SIGPIPE, SIG_IGN);
        uv_signal_init(w->loop, &m.sigint);
        uv_signal_init(w->loop, &m.sigterm);
        m.sigint.data = m.sigterm.data = &m;
        uv_signal_start(&m.sigint, signal_cb, SIGINT);
        uv_signal_start(&m.sigterm, signal_cb, SIGTERM);
        log_msg(LOG_INFO, "xmpp-tls-proxy %s running with %s (%zu domains, %zu listeners)",
                XTP_VERSION, cfg->path, cfg->ndomains, cfg->nlisteners);
    } else {
        for (size_t i = 0; i < w->nlsn; i++)
            listener_stop(w->lsn[i]);
        dns_close(w->dns, NULL, NULL);
        w->dns = NULL;
    }
    uv_run(w->loop, UV_RUN_DEFAULT);
    if (rc == 0)
        log_msg(LOG_INFO, "stopped");
    uv_loop_close(w->loop);
    for (size_t i = 0; i < WORKER_TICKETS; i++)
        tls_ticket_free(w->tickets[i].ticket);
    if (w->certmem != NULL && certmem_flush(w->certmem) != 0)
        log_msg(LOG_WARN, "cannot write s2s.state_file %s", cfg->state_file);
    certmem_free(w->certmem);
    free(w->lsn);
    free(w);
    return rc;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool check = false;
    char err[1024];
    struct cfg *cfg;
    struct tls_server *tls;
    struct snap *snap;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--check") == 0 || strcmp(argv[i], "--check-config") == 0) {
            check = true;
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
    rc = run(snap);
    snap_unref(snap);
    return rc;
}
