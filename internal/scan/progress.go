package scan

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Bar draws a one-line progress bar on a terminal, redrawn in place. A nil *Bar draws nothing.
type Bar struct {
	w     io.Writer
	width int // of the bar itself, in cells
	every time.Duration
	clock Clock

	mu    sync.Mutex
	last  time.Time
	drawn bool
}

// IsTerminal says whether w is a character device (a terminal), not a file or a pipe.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// NewBar returns a bar on w, or nil when w is not a terminal (unless force) or quiet is set.
func NewBar(w io.Writer, quiet, force bool) *Bar {
	if quiet || !force && !IsTerminal(w) {
		return nil
	}
	return &Bar{w: w, width: 30, every: 100 * time.Millisecond, clock: RealClock{}}
}

// Update redraws the bar, at most every 100ms except for the final state.
func (b *Bar) Update(p Progress) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	if b.drawn && p.Fraction < 1 && now.Sub(b.last) < b.every {
		return
	}
	b.last, b.drawn = now, true
	fmt.Fprintf(b.w, "\r%s\x1b[K", renderProgress(p, b.width))
}

// Clear removes the bar so what follows starts on a clean line.
func (b *Bar) Clear() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.w, "\r\x1b[K")
		b.drawn = false
	}
}

// renderProgress is the bar's text: "[#####.....]  50%  1200 events  37 denials  page 24".
func renderProgress(p Progress, width int) string {
	f := min(max(p.Fraction, 0), 1)
	full := int(f * float64(width))
	s := fmt.Sprintf("[%s%s] %3d%%  %d events  %d denials",
		strings.Repeat("#", full), strings.Repeat(".", width-full), int(f*100), p.Records, p.Denials)
	if p.Note != "" {
		s += "  " + p.Note
	}
	return s
}
