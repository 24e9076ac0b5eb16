# make demo: build kmsfix and explain every bundled sample in events/, in folder order, with a
# header per sample (its folder and events/<folder>/about.txt). Offline: each sample carries
# its own world file, so no AWS account or credentials are involved.
DEMO_BIN := $(ROOT)/dist/kmsfix

.PHONY: demo demo-test

demo:
	@go build -o $(DEMO_BIN) ./cmd/kmsfix
	@for d in $(ROOT)/events/*/; do \
		name=$$(basename "$$d"); \
		printf '\n==== %s\n     %s\n\n' "$$name" "$$(cat "$$d/about.txt")"; \
		$(DEMO_BIN) explain --world "$$d/world.json" "$$d/event.json"; \
	done

# demo-test: the demo runs clean: every sample explained, exit 0, nothing on stderr.
demo-test:
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(MAKE) --no-print-directory demo >"$$tmp/out" 2>"$$tmp/err" || { cat "$$tmp/err"; echo "make demo failed"; exit 1; }; \
	test ! -s "$$tmp/err" || { cat "$$tmp/err"; echo "make demo wrote to stderr"; exit 1; }; \
	n=$$(grep -c '^==== ' "$$tmp/out"); want=$$(ls -d $(ROOT)/events/*/ | wc -l); \
	test "$$n" -eq "$$want" || { echo "make demo showed $$n samples, want $$want"; exit 1; }; \
	echo "make demo: $$n samples explained"

TEST_STEPS += demo-test
