# Build and install chroot-tool with its completions and man pages.
#   make                      build (release)
#   sudo make install         install under /usr/local (and the shells' completion dirs)
#   make install DESTDIR=/tmp/pkg PREFIX=/usr    stage for a package
#   make share                regenerate share/ (completions, man pages) after a CLI change
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/chroot-tool
# Where Debian's shells look for completions of packages.
BASHCOMPDIR ?= /usr/share/bash-completion/completions
ZSHCOMPDIR ?= /usr/share/zsh/vendor-completions
FISHCOMPDIR ?= /usr/share/fish/vendor_completions.d
CARGO ?= cargo
# A static binary: no dynamic loading on each start (`run` pays it every
# time; see docs/performance.md). With musl when its Rust target and C
# compiler are installed (`rustup target add x86_64-unknown-linux-musl`,
# `apt-get install musl-tools`): glibc's start-up probes the CPU with
# `cpuid`, which on a VM traps to the hypervisor on every start (about
# 0.1 ms of each `run`); else with glibc, linked statically. The target is
# named so that build scripts and proc macros stay dynamic.
HOST := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
# `make CT_TARGET=x86_64-unknown-linux-gnu` chooses glibc (users known
# only through NSS, LDAP or sssd, are found only by glibc's binary).
MUSL := $(subst -gnu,-musl,$(HOST))
ifeq ($(origin CT_TARGET),undefined)
CT_TARGET := $(shell if rustup target list --installed 2>/dev/null | grep -qx '$(MUSL)' \
	&& command -v musl-gcc >/dev/null; then echo '$(MUSL)'; else echo '$(HOST)'; fi)
endif
# The binary installed (tests/install.rs passes the one it built).
BIN ?= target/$(CT_TARGET)/release/chroot-tool

.PHONY: all build install uninstall share bin

all: build

build:
	RUSTFLAGS="$(RUSTFLAGS) -C target-feature=+crt-static" $(CARGO) build --release --locked --target $(CT_TARGET)

# The path of the binary `build` makes (bench/bench.sh measures that one).
bin:
	@echo $(BIN)

install: build
	install -Dm0755 $(BIN) $(DESTDIR)$(BINDIR)/chroot-tool
	install -Dm0644 share/completions/chroot-tool.bash $(DESTDIR)$(BASHCOMPDIR)/chroot-tool
	install -Dm0644 share/completions/_chroot-tool $(DESTDIR)$(ZSHCOMPDIR)/_chroot-tool
	install -Dm0644 share/completions/chroot-tool.fish $(DESTDIR)$(FISHCOMPDIR)/chroot-tool.fish
	install -d $(DESTDIR)$(MANDIR)/man1
	install -m0644 share/man/man1/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -Dm0644 share/config.toml $(DESTDIR)$(DOCDIR)/config.toml

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/chroot-tool
	rm -f $(DESTDIR)$(BASHCOMPDIR)/chroot-tool $(DESTDIR)$(ZSHCOMPDIR)/_chroot-tool
	rm -f $(DESTDIR)$(FISHCOMPDIR)/chroot-tool.fish
	rm -f $(DESTDIR)$(MANDIR)/man1/chroot-tool.1 $(DESTDIR)$(MANDIR)/man1/chroot-tool-*.1
	rm -f $(DESTDIR)$(DOCDIR)/config.toml
	-rmdir $(DESTDIR)$(DOCDIR)

share:
	CHROOT_TOOL_BLESS=1 $(CARGO) test --test completions share_is_up_to_date
