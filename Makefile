# Two commands do everything on a fresh machine: `make book` and `make test`.
# Each creates .venv (pinned requirements.txt + this project, editable) when missing or out of date.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
VENDOR := book/_static/vendor/html-manager
# nbgrader runs alembic as a subprocess, and jupyter-book finds its kernel on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help book test test-fast lab release release-check screenshots clean system-deps

help:
	@echo "make book      build the HTML book into _build/html (executes chapters, cached)"
	@echo "make test      run the whole test suite (builds the book too)"
	@echo "make test-fast the tests that take seconds (no whole notebooks, no book build)"
	@echo "make lab       open JupyterLab on exercises/ in the course environment"
	@echo "make release   regenerate exercises/ from solutions/ with nbgrader"

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps -e .
	@touch $@

# The ipywidgets HTML manager is served from the built site, not a CDN (pinned in package-lock.json).
$(VENDOR)/embed.js: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)
	cp node_modules/@jupyter-widgets/html-manager/dist/*.js \
	   node_modules/@jupyter-widgets/html-manager/dist/*.woff* \
	   node_modules/@jupyter-widgets/html-manager/dist/*.ttf \
	   node_modules/@jupyter-widgets/html-manager/dist/*.eot \
	   node_modules/@jupyter-widgets/html-manager/dist/*.svg \
	   node_modules/@jupyter-widgets/html-manager/dist/embed.js.LICENSE.txt $(VENDOR)/
	@touch $@

book: $(STAMP) $(VENDOR)/embed.js
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html"

# Debian packages the tests need: bubblewrap (the grader's sandbox) and chromium (the browser tests).
# Installed with apt-get when missing (as root, or with sudo); elsewhere install them yourself.
system-deps:
	@missing=""; command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	 test -x /usr/bin/chromium || missing="$$missing chromium"; \
	 if [ -n "$$missing" ]; then \
	   if command -v apt-get >/dev/null && { [ "$$(id -u)" = 0 ] || command -v sudo >/dev/null; }; then \
	     SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); echo "installing$$missing"; \
	     $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	     $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	   else echo "make: please install$$missing (Debian/Ubuntu package names)"; fi; \
	 fi

# Two pytest workers per core: the suite spends much of its time waiting on kernels, subprocesses and a
# browser (with one worker per core, 2026-12-05, the two cores were busy 1.18 cores' worth on average).
WORKERS := $(shell echo $$(( 2 * $$(nproc 2>/dev/null || echo 1) )))

test: system-deps $(STAMP) $(VENDOR)/embed.js
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile --no-loadscope-reorder

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile --no-loadscope-reorder -m "not slow"

lab: $(STAMP)
	$(BIN)/jupyter lab exercises/

release: $(STAMP)
	$(BIN)/python -m autograde release

release-check: $(STAMP)
	$(BIN)/python -m autograde release --check

# PNGs of each page's first screen and of each widget in _build/screenshots, for review. Needs Chromium
# (Debian: apt-get install chromium), driven by Playwright from the venv (tests/browser.py).
SCREENSHOTS := _build/screenshots

screenshots: book
	rm -rf $(SCREENSHOTS)
	$(BIN)/python -m tests.browser screenshots $(SCREENSHOTS)

clean:
	rm -rf _build .jupyter_cache $(VENDOR)
