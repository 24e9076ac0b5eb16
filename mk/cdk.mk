# The CDK app (infra/): `make synth` writes cdk.out/ offline (cdk-nag errors fail it),
# `make deploy` deploys to the current AWS credentials' account and Region, `make cdk-check`
# synthesizes with the aws-cdk CLI from npm and runs cfn-guard (Control Tower rules + infra/guard).
# Parameters: CDK context, e.g. `make deploy CDK_ARGS="-c mode=apply -c sandboxAccounts=111122223333"`,
# or the KMSFIX_* environment variables (docs/deploy.md).
# `make synth-org` synthesizes the organization shape (docs/org.md: KmsfixHub, KmsfixSpoke,
# KmsfixSpokes) into cdk.out.org/ with the example values of ORG_ARGS; `make synth` does it too,
# so it always shows both shapes; cdk-check guards both.
.PHONY: synth synth-org deploy destroy cdk-check

CDK        := $(TOOLS)/node/node_modules/.bin/cdk
CFNGUARD_PKG := $(TOOLS)/node/node_modules/@cdklabs/cdk-validator-cfnguard
CFN_GUARD  := $(CFNGUARD_PKG)/bin/ubuntu/x86_64/cfn-guard
CT_RULES   := $(CFNGUARD_PKG)/rules/control-tower/cfn-guard
CDK_STACK  ?= $(or $(KMSFIX_STACK_NAME),Kmsfix)
CDK_ARGS   ?=
ORG_ARGS   ?= -c deployment=org -c orgId=o-exampleorg1 -c hubAccount=111111111111 -c hubRegion=eu-west-1 \
              -c spokeTargets=ou-exam-ple00001 -c spokeRegions=eu-west-1,us-east-1 -c sandboxOus=ou-exam-ple00002 \
              -c mode=apply -c sandboxAccounts=222222222222,333333333333 \
              -c routes=tag:team=payments=sns:arn:aws:sns:eu-west-1:111111111111:payments,ou-exam-ple00002=sns:arn:aws:sns:eu-west-1:111111111111:sandbox

synth: tools build synth-org
	$(CDK) synth --quiet $(CDK_ARGS)
	@for t in cdk.out/*.template.json; do echo "synth: $$t"; done

synth-org: tools build
	$(CDK) synth --quiet -o cdk.out.org $(ORG_ARGS)
	@for t in cdk.out.org/*.template.json; do echo "synth-org: $$t"; done

deploy: tools build
	$(CDK) deploy $(CDK_ARGS)

destroy: tools
	$(CDK) destroy $(CDK_ARGS)

# Rules listed in infra/guard/disabled-ct-rules.txt (each with its reason) are left out.
cdk-check: synth
	@rules=$$(mktemp -d); trap 'rm -rf "$$rules"' EXIT; \
	disabled=$$(grep -v '^#' infra/guard/disabled-ct-rules.txt | awk 'NF {print $$1}'); \
	n=0; for f in $$(find $(CT_RULES) -name '*.guard'); do \
	  name=$$(basename $$f .guard); \
	  if ! grep -qx "$$name" <<<"$$disabled"; then ln -s "$$f" "$$rules/"; n=$$((n+1)); fi; \
	done; \
	for f in infra/guard/*.guard; do ln -s "$(ROOT)/$$f" "$$rules/kmsfix-$$(basename $$f)"; done; \
	echo "cfn-guard: $$n Control Tower rules + $$(ls infra/guard/*.guard | wc -l) project rule file(s) over cdk.out/$(CDK_STACK).template.json and cdk.out.org/*.template.json"; \
	for t in cdk.out/$(CDK_STACK).template.json cdk.out.org/*.template.json; do \
	  $(CFN_GUARD) validate -r "$$rules" -d "$$t" --show-summary fail -o single-line-summary || exit 1; \
	done
	@echo "cdk-check: passed"

TEST_STEPS += cdk-check
