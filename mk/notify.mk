# `make storm`: 10,000 CloudTrail denial events holding 500 distinct findings through the
# remediator handler against dynalite, goaws and a Slack webhook receiver; checks exactly one
# Slack and one SNS message per finding with every repeat counted, and prints throughput and
# memory (docs/notifications.md). Not in `make test`: it takes minutes on two cores. The tests
# run the same storm at a tenth of the size (bench/storm TestSmallStorm).
.PHONY: storm
STORM_ARGS ?= -events 10000 -findings 500
storm: tools
	go run ./bench/storm $(STORM_ARGS)
