package testenv

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"time"
)

// LockedBuffer collects what is written to it concurrently (a process's output, a logger's
// lines). With Max > 0 it keeps only about the first Max bytes: enough to diagnose, and an
// emulator in a storm does not grow it without bound. WaitFor is the one way tests wait for
// a line to arrive.
type LockedBuffer struct {
	Max     int
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed (and replaced) at every write
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	if b.Max > 0 && b.buf.Len() > b.Max {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns the lines that contain all of want, in order.
func (b *LockedBuffer) Lines(want ...string) []string {
	var out []string
	for line := range strings.SplitSeq(b.String(), "\n") {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if ok && line != "" {
			out = append(out, line)
		}
	}
	return out
}

// WaitFor waits until at least n lines contain all of want and returns every such line; after
// limit it returns what it has and an error that quotes the whole buffer.
func (b *LockedBuffer) WaitFor(limit time.Duration, n int, want ...string) ([]string, error) {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		b.mu.Lock()
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		b.mu.Unlock()
		if lines := b.Lines(want...); len(lines) >= n {
			return lines, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			lines := b.Lines(want...)
			return lines, fmt.Errorf("after %s, %d line(s) contain %q, want %d; the output:\n%s", limit, len(lines), want, n, b.String())
		}
	}
}
