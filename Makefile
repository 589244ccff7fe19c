# The two commands of the README: `make run` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 8080
WEB_PORT ?= 8081
IRC_PORT ?= 6667

.PHONY: run test lint typecheck pytest bench bench-irc bench-scale clean sysdeps

$(STAMP): setup.cfg pyproject.toml
	@echo "chatroom: creating the virtualenv in $(VENV) and installing dependencies (1-2 minutes the first time)..."
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# editable: the project root goes on sys.path (setup.cfg's package_dir), so twistd
	# finds twisted/plugins/ here
	$(BIN)/python -m pip install --quiet -e '.[dev,redis]'
	touch $@
	@echo "chatroom: installed in $(VENV)"

run: $(STAMP)
	mkdir -p var
	@echo "chatroom: telnet/nc on 127.0.0.1:$(PORT), web page on http://127.0.0.1:$(WEB_PORT)/, IRC on 127.0.0.1:$(IRC_PORT)"
	$(BIN)/twistd --nodaemon --pidfile= chatroom --port $(PORT) --web $(WEB_PORT) --irc $(IRC_PORT)

lint: $(STAMP)
	$(BIN)/ruff check chatroom tests twisted benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# Real servers and clients the integration tests start themselves (Debian packages, installed
# if missing): Debian's own telnet, driven in tmux, is one of the clients; systemd-analyze
# verifies contrib/chatroom.service; buildah builds contrib/Containerfile on a Debian base
# made by debootstrap.
sysdeps:
	@command -v redis-server >/dev/null && command -v chromium >/dev/null && test -x /usr/bin/chromedriver \
	  && command -v telnet >/dev/null && command -v tmux >/dev/null \
	  && command -v systemd-analyze >/dev/null && command -v buildah >/dev/null \
	  && command -v debootstrap >/dev/null || { \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    redis-server chromium chromium-driver telnet tmux systemd buildah debootstrap; }

pytest: $(STAMP) sysdeps
	$(BIN)/pytest

test: lint typecheck pytest

# Fan-out benchmarks: chatroom and the naive Twisted baseline on the same workloads, one
# table (BENCH_QUICK=1 for a ~2 minute run); then RSS under abuse; then the IRC front end
# against ngIRCd and InspIRCd.
bench: $(STAMP)
	-$(BIN)/python -m pip install --quiet py-spy
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/memory.py
	$(MAKE) bench-irc

# chatroom's IRC front end against ngIRCd and InspIRCd (Debian packages, installed with
# apt-get if missing) on the same loads, in the same run; one table (BENCH_QUICK=1: ~3 minutes).
bench-irc: $(STAMP)
	$(BIN)/python benchmarks/irc_peers.py

# People at scale (issue 17): 15 000 members in one room, join and leave storms, 300 rooms of
# 50, 2000 WebSocket members (benchmarks/scale.py; ~10 minutes, BENCH_QUICK=1 for ~4). The
# load is spread over several loadgen processes and 127.0.0.x source addresses.
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale.py

clean:
	rm -rf $(VENV) build *.egg-info twisted/plugins/dropin.cache .mypy_cache .ruff_cache .pytest_cache
