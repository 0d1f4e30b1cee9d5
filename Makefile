# Convenience targets; each calls setup.sh, which installs what it needs first (run as root).
.PHONY: setup run test unit system lint bench soak install
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
soak:
	./setup.sh soak
# .venv holds an editable install (setup.sh): edits to the working tree need no reinstall.
install:
	.venv/bin/pip install -q --no-deps --root-user-action=ignore -e .
