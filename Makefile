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

# Apache Beam wants protobuf < 7, TF Serving's API protobuf 7: the Beam test gets a
# venv of its own.
BEAM_VENV := .venv-beam
$(BEAM_VENV)/installed: setup.cfg setup.py
	$(PYTHON) -m venv $(BEAM_VENV)
	$(BEAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BEAM_VENV)/bin/python -m pip install --quiet -e ".[beam]"
	touch $@

.PHONY: install demo records-demo test test-slow test-beam mutations bench clean
install: $(VENV)/installed

# Colorizes the example photos (pre-1929 black-and-white, and Kodak colour photos
# taken as gray) with the default shipped model (effnet_general).
demo: $(VENV)/installed
	$(PY) -m colorize_tf.colorize examples/old_photos examples/kodak \
	    --output_dir=out/demo --confidence --overwrite

# Data prep on the example photos: records, bins and report in out/demo_records.
records-demo: $(VENV)/installed
	$(PY) -m data_prep.build_records --input_dir=examples/kodak \
	    --output_dir=out/demo_records --frame_size=256 --workers=1

test: $(VENV)/installed
	$(PY) -m pytest -q

# build_records on Beam's DirectRunner against the local path (~1 min once installed).
test-beam: $(BEAM_VENV)/installed
	$(BEAM_VENV)/bin/python -m pytest -q tests/test_beam_pipeline.py

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
	$(PY) bench/hostile_load.py

clean:
	rm -rf out
