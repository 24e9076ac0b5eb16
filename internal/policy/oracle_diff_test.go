package policy

// Client for testdata/oracle/oracle.cjs: one long-lived Node process running
// @cloud-copilot/iam-simulate (AGPL: test-only, out of process, never imported by shipped code),
// through the leaf package internal/testenv/iamoracle (internal/testenv itself imports world,
// which imports this package).

import (
	"errors"
	"testing"

	"github.com/kmsfix/kmsfix/internal/testenv/iamoracle"
)

// oracleAnswer is one line of the oracle's output.
type oracleAnswer = iamoracle.Answer

// oracle is a running oracle.cjs in decision mode; ask may be called many times.
type oracle struct{ o *iamoracle.Oracle }

// startOracle starts it with args, failing the test with "run `make tools`" when the pinned
// tools are not installed; it stops at the test's cleanup.
func startOracle(t testing.TB, args ...string) *oracle {
	t.Helper()
	return &oracle{iamoracle.Start(t, args...)}
}

// ask sends the cases (JSON lines) and reads one answer per case, in order.
func (o *oracle) ask(lines [][]byte) ([]oracleAnswer, error) { return o.o.AskLines(lines) }

// askOne is ask for a single case.
func (o *oracle) askOne(line []byte) (oracleAnswer, error) {
	a, err := o.ask([][]byte{line})
	if err != nil {
		return oracleAnswer{}, err
	}
	if len(a) != 1 {
		return oracleAnswer{}, errors.New("no answer")
	}
	return a[0], nil
}
