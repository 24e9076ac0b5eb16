package main

import "testing"

func TestContextString(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{nil, ""}, {"a,b", "a,b"}, {[]any{"a", "b"}, "a,b"}, {true, "true"}, {float64(5), "5"},
	}
	for _, tt := range tests {
		if got := contextString(tt.in); got != tt.want {
			t.Errorf("contextString(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
