# Palot — the README's commands. Each target installs what it needs, idempotently.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PALOT := $(VENV)/bin/palot
STAMP := $(VENV)/.palot-installed

.PHONY: demo test bench setup system-deps test-deps opencode clean
INSPECTOR_DIR := .cache/mcp-inspector
INSPECTOR_VERSION := 2.12.0

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
test-deps: $(STAMP)
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

# Two workers: the tests wait on servers more than they compute. Container tests share one worker (one engine).
TEST_WORKERS ?= 2

test: setup test-deps
	$(PY) -m pytest tests --ignore=tests/bench --durations=15 -n $(TEST_WORKERS) \
	  --junitxml=test-artifacts/junit.xml  # every test's time, for finding where the suite's time goes

bench: setup
	$(PY) -m pytest tests/bench -q -s -m bench

clean:
	rm -rf $(VENV) bench-results test-artifacts
