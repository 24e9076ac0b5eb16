package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestSmallStorm is the storm at a tenth of its size: 1,000 events holding 50 findings
// through the handler against dynalite, goaws and the Slack receiver.
func TestSmallStorm(t *testing.T) {
	res, err := run(context.Background(), t, config{Events: 1000, Findings: 50, Containers: 8, Workers: 8, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) > 0 {
		t.Fatalf("storm problems:\n%s", strings.Join(res.Problems, "\n"))
	}
	if res.Slack != 50 || res.SNS != 50 || res.CountOK != 50 || res.HandlerErrors != 0 {
		t.Errorf("result %+v", res)
	}
	var out bytes.Buffer
	report(&out, config{Containers: 8, Workers: 8}, res)
	t.Log(out.String())
}

func TestFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := cli([]string{"-events", "10", "-findings", "20"}, &out, &errOut); code != 2 {
		t.Errorf("exit %d, want 2 for fewer events than findings", code)
	}
}
