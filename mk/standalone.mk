# standalone-check: no file of the repository points outside it (a path or a document that only
# exists on the authors' machines). The patterns name this file's own text, so it is skipped.
.PHONY: standalone-check
standalone-check:
	@if grep -rnI --exclude-dir=.git --exclude-dir=.tools --exclude-dir=node_modules --exclude-dir=cdk.out \
	    --exclude-dir=dist --exclude=standalone.mk -e '\.\./shared/' -e '/work/shared' -e 'CONTRACT\.md' \
	    -e 'DESIGN\.md' -e 'policy-semantics\.md' -e 'cloudtrail-events\.md' . ; then \
	  echo "standalone-check: the lines above refer to files outside the repository"; exit 1; fi
	@echo "standalone-check: nothing refers outside the repository"

TEST_STEPS += standalone-check
