# `make storm`: 10,000 CloudTrail denial events holding 500 distinct findings through the
# remediator handler against dynalite, goaws and a Slack webhook receiver; checks exactly one
# Slack and one SNS message per finding with every repeat counted, and prints throughput and
# memory (docs/notifications.md). Not in `make test`: it takes minutes on two cores. The tests
# run the same storm at a tenth of the size (bench/storm TestSmallStorm).
.PHONY: storm
STORM_ARGS ?= -events 10000 -findings 500
storm: tools
	go run ./bench/storm $(STORM_ARGS)

# `make storm-hub`: the organization storm (docs/org.md "The organization storm"): 100,000 denials of 1,000
# accounts in 3 Regions holding 5,000 findings through the hub handler (5 containers, the
# stack's default reserved concurrency; 16 accounts routed by account, 200 by OU) against
# local-kms per Region, dynalite, goaws, Slack receivers and the STS, IAM and Organizations
# fakes, then a renewal phase whose credentials last 15 s. Each run
# fails unless every finding reached its routed channel exactly once, every event was
# verified from its own account's world and counted, AssumeRole stayed within one per
# account, container and credential lifetime, and the live heap stayed flat. Not in
# `make test`: 6 to 9 minutes on two busy cores (2026-12-07: 376 s at load 4 to 7, 551 s
# at 3 to 9). Scale down with e.g.
# STORM_HUB_ARGS="-events 20000 -findings 1000 -accounts 200"; the tests run a reduced
# storm (bench/storm TestSmallHubStorm).
.PHONY: storm-hub
STORM_HUB_ARGS ?= -events 100000 -findings 5000 -accounts 1000 -regions 3
STORM_HUB_RENEW_ARGS ?= -events 10000 -findings 500 -accounts 100 -routed 10 -ou-routed 30 -lifetime 15s
storm-hub: tools
	go build -o $(or $(TMPDIR),/tmp)/kmsfix-storm ./bench/storm
	nice $(or $(TMPDIR),/tmp)/kmsfix-storm hub $(STORM_HUB_ARGS)
	nice $(or $(TMPDIR),/tmp)/kmsfix-storm hub $(STORM_HUB_RENEW_ARGS)
