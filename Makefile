# `make demo` and `make test` set themselves up: they create .venv and install the
# package with its test extras the first time.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2

$(VENV)/installed: setup.cfg setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

.PHONY: install demo records-demo test test-slow mutations bench clean
install: $(VENV)/installed

# Colorizes the example photos (pre-1929 black-and-white, and Kodak colour photos
# taken as gray) with the default shipped model (colorunet_general).
demo: $(VENV)/installed
	$(PY) -m colorize_tf.colorize examples/old_photos examples/kodak \
	    --output_dir=out/demo --confidence --overwrite

# Data prep on the example photos: records, bins and report in out/demo_records.
records-demo: $(VENV)/installed
	$(PY) -m data_prep.build_records --input_dir=examples/kodak \
	    --output_dir=out/demo_records --frame_size=256 --workers=1

test: $(VENV)/installed
	$(PY) -m pytest -q

# The longer checks (hypothesis with 3,000 cases per target).
test-slow: $(VENV)/installed
	$(PY) -m pytest -q -m slow

# Plants known bugs one at a time and checks that the suite catches each (~10 min).
mutations: $(VENV)/installed
	$(PY) bench/mutations.py

bench: $(VENV)/installed
	$(PY) bench/build_records.py
	$(PY) bench/train.py
	$(PY) bench/colorize.py
	$(PY) bench/precision.py
	$(PY) bench/evaluate.py
	$(PY) bench/serve.py

clean:
	rm -rf out
