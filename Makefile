# Two commands on a fresh machine: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# Debian packages: Tesseract with English and Korean, its headers and a compiler (tesserocr is built
# against this Tesseract, not taken as a wheel that bundles another version and reads differently),
# the fonts the OCR renderers draw with, and Chromium, the headless browser the rendered-page tests
# (tests/browser.py) screenshot pages with, PostgreSQL, whose initdb and pg_ctl the tests start a throwaway
# server with (tests/postgres.py), and nginx, the load balancer of the several-instance test (tests/nginx.py).
APT_PACKAGES := tesseract-ocr tesseract-ocr-eng tesseract-ocr-kor libtesseract-dev libleptonica-dev pkg-config g++ \
	fonts-dejavu-core fonts-nanum chromium postgresql nginx

.PHONY: setup system-deps demo test test-fast lint clean

setup: system-deps $(STAMP)

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt --no-binary tesserocr -e '.[train,serve,labelstudio,cluster,dev]'
	$(BIN)/pip install --quiet -c constraints.txt --no-deps rapidocr-onnxruntime pyclipper shapely six  # the rapidocr extra, less its opencv-python (headless is in)
	touch $(STAMP)

demo: setup
	$(BIN)/lineinspect demo --out demo-output

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not slow" -n auto  # one worker per core (pytest-xdist); each builds its own session fixtures

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) demo-output .pytest_cache
