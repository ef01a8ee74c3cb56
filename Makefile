# The two set-up commands of the README: `make run` and `make test`. Both create .venv on first
# use and reinstall it when pyproject.toml changes.
VENV ?= .venv
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test bench browser

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(VENV)/bin/smsguard serve

test: $(STAMP) browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest

# The reviewer-UI tests drive Debian's chromium (Playwright never downloads a browser here); the CJK font
# makes its screenshots readable.
browser:
	@dpkg -s chromium fonts-wqy-microhei >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei)

bench: $(STAMP)
	-$(VENV)/bin/python bench/engine.py  # exit 1 when a target is missed: report it, run the rest
	-$(VENV)/bin/python bench/startup.py
	command -v wrk > /dev/null || apt-get install -y wrk
	bench/api.sh embedded
