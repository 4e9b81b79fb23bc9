# xmpp-tls-proxy: the two commands of the README, and a few more.
#   make run    install what is missing, build, start the demo (jabberd2 + proxy) in the foreground
#   make test   install what is missing, build with ASan+UBSan and -Werror, run every test
.POSIX:
.PHONY: all install soak bench-full bench-c2s bench-scale bench-stanza deps deps-bench deps-build build build-profile run test test-build unit fuzz bench format clean

JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
BUILD  ?= build
CMAKE  ?= cmake
CTEST  ?= ctest

all: build

# Packages (Debian 12, as root). Idempotent: apt runs only when something is missing.
deps:
	scripts/deps.sh test
deps-bench:
	scripts/deps.sh bench
deps-build:
	scripts/deps.sh build

build: deps-build
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	$(CMAKE) --build $(BUILD) -j $(JOBS)

# The proxy on our static mbedTLS profile (docs/mbedtls-profile.md) in $(BUILD)/profile. The
# first run downloads trixie's mbedTLS source package (needs dpkg-dev, patch, bzip2, xz-utils
# and curl); later runs reuse it.
build-profile: deps-build
	$(CMAKE) -S . -B $(BUILD)/profile -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXTP_MBEDTLS_PROFILE=ON
	$(CMAKE) --build $(BUILD)/profile -j $(JOBS)

run: deps build
	scripts/demo.sh $(BUILD)

test-build: deps
	$(CMAKE) -S . -B $(BUILD)/test -DCMAKE_BUILD_TYPE=Debug \
	    -DXTP_SANITIZE=address,undefined -DXTP_WERROR=ON
	$(CMAKE) --build $(BUILD)/test -j $(JOBS)

test: test-build
	cd $(BUILD)/test && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(CTEST) --output-on-failure --timeout 900

# Unit and fuzz-corpus tests only: seconds, no servers.
unit: test-build
	cd $(BUILD)/test && $(CTEST) --output-on-failure -L 'unit|fuzz'

# libFuzzer: every target for FUZZ_SECONDS (default 60) on a scratch copy of its corpus.
FUZZ_SECONDS ?= 60
fuzz: deps
	scripts/fuzz.sh $(FUZZ_SECONDS)

# Benchmarks (bench/README.md): the proxy next to stunnel4, HAProxy, jabberd2's own TLS and
# plaintext, with the crypto floors, in one table (~2 min). bench-full: 9,900 idle sessions
# (~20 min). bench-c2s: handshake CPU, idle RSS, added stanza latency of the proxy alone.
bench: deps-bench build
	bench/compare.sh $(BUILD) --quick
bench-full: deps-bench build
	bench/compare.sh $(BUILD)
bench-c2s: deps-bench build
	bench/c2s.sh $(BUILD)
# bench-scale: 20,000 idle sessions over several proxy instances, and the handshake latency of
# new sessions while they are held (~4 min; SESSIONS=N for another count).
SESSIONS ?= 20000
bench-scale: deps-bench build
	bench/scale.sh $(BUILD) $(SESSIONS)
# bench-stanza: the stanza path (issue 5 target 4): added latency through the proxy vs straight to
# jabberd2 in the same runs, CPU per stanza (~3 min); then instructions, heap calls and copies per
# stanza under Valgrind (~1.5 min). Separate from `make bench`, which must stay under 3 minutes.
bench-stanza: deps-bench build
	bench/stanza.sh $(BUILD)
	bench/stanza-callgrind.sh $(BUILD)

format:
	clang-format -i proxy/*.c proxy/*.h tests/unit/*.c tests/unit/*.h tests/fuzz/*.c

clean:
	rm -rf $(BUILD)

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary (PREFIX/sbin), the annotated example
# configuration (SYSCONFDIR/xmpp-tls-proxy/example.yaml; proxy.yaml is never touched), the
# systemd unit (PREFIX/lib/systemd/system, run from PREFIX/sbin) and the man page
# (PREFIX/share/man/man8). Then: docs/operator-guide.md "Install".
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
MANDIR     ?= $(PREFIX)/share/man
install: build
	install -D -m 0755 $(BUILD)/xmpp-tls-proxy $(DESTDIR)$(PREFIX)/sbin/xmpp-tls-proxy
	install -D -m 0644 config/example.yaml $(DESTDIR)$(SYSCONFDIR)/xmpp-tls-proxy/example.yaml
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/sbin/|$(PREFIX)/sbin/|g' config/xmpp-tls-proxy.service \
	    >$(DESTDIR)$(UNITDIR)/xmpp-tls-proxy.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/xmpp-tls-proxy.service
	install -D -m 0644 docs/xmpp-tls-proxy.8 $(DESTDIR)$(MANDIR)/man8/xmpp-tls-proxy.8

# The soak (tests/soak/README.md): 30 minutes, 2,000 logged-in sessions exchanging numbered,
# checksummed messages with churn; zero lost/duplicated/reordered, fds back to baseline, RSS
# flat. The 3-minute ASan variant runs in `make test` (t40).
soak: deps build
	scripts/soak.sh $(BUILD)
