# Convenience targets; each calls setup.sh, which installs what it needs first (run as root).
.PHONY: setup run test unit system lint bench bench-memory soak install
setup:
	./setup.sh
run:
	./setup.sh run
test:
	./setup.sh test
unit:
	./setup.sh test tests/unit
system:
	./setup.sh test tests/system
lint:
	.venv/bin/ruff check ctop bpf exporters tests bench
	.venv/bin/mypy
bench:
	./setup.sh bench
bench-memory:
	./setup.sh bench memory
soak:
	./setup.sh soak
# .venv holds an editable install (setup.sh): edits to the working tree need no reinstall.
install:
	.venv/bin/pip install -q --no-deps --root-user-action=ignore -e .
