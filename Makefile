# Convenience targets; each calls setup.sh, which installs what it needs first (run as root).
.PHONY: setup run test unit system lint bench bench-memory soak install guest
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
# The system tests in a pure cgroup v2 guest, then in a pure v1 guest (one at a time; slow: README "Pure v2 and v1
# guests"). GUEST_ARGS are pytest arguments; results in guest-results/v2 and guest-results/v1.
GUEST_ARGS ?= tests/system
guest:
	./setup.sh guest v2 $(GUEST_ARGS); v2=$$?; ./setup.sh guest v1 $(GUEST_ARGS); v1=$$?; \
	echo "guest: v2 exit $$v2, v1 exit $$v1"; [ $$v2 -eq 0 ] && [ $$v1 -eq 0 ]
