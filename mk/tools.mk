# Pinned tools, installed into .tools/ (gitignored) so a fresh machine needs only Go and Node.
LOCAL_KMS_VERSION   := v0.0.0-20260228092603-2a5e92d09ab6
GOAWS_VERSION       := v0.4.5
RIE_VERSION         := v0.0.0-20261030222936-bef5c4ba774d
STATICCHECK_VERSION := v0.8.2
GOVULNCHECK_VERSION := v1.9.0
VULNDB_VERSION      := v0.0.0-20261105234957-e22db6528018

GO_TOOLS := $(TOOLS)/bin/local-kms $(TOOLS)/bin/goaws $(TOOLS)/bin/aws-lambda-rie
NODE_STAMP := $(TOOLS)/node/.installed

tools: $(GO_TOOLS) $(NODE_STAMP)

$(TOOLS)/bin/local-kms:
	go install github.com/nsmithuk/local-kms@$(LOCAL_KMS_VERSION)

# goaws names its binary "cmd"; keep it under a name that says what it is.
$(TOOLS)/bin/goaws:
	go install github.com/Admiral-Piett/goaws/app/cmd@$(GOAWS_VERSION)
	mv $(TOOLS)/bin/cmd $@

$(TOOLS)/bin/aws-lambda-rie:
	go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

$(NODE_STAMP): tools/package.json tools/package-lock.json
	mkdir -p $(TOOLS)/node
	cp tools/package.json tools/package-lock.json $(TOOLS)/node/
	cd $(TOOLS)/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@
