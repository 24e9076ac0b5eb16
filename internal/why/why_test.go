package why

import "testing"

func TestOverall(t *testing.T) {
	for _, c := range []struct {
		steps []Verdict
		want  Verdict
	}{
		{nil, NotKMS},
		{[]Verdict{Allowed}, Allowed},
		{[]Verdict{Allowed, NotKMS}, Allowed},
		{[]Verdict{Allowed, Undetermined}, Undetermined},
		{[]Verdict{Undetermined, Diagnosed}, Diagnosed},
		{[]Verdict{Diagnosed, S3Access}, S3Access},
	} {
		var steps []Step
		for _, v := range c.steps {
			steps = append(steps, Step{Verdict: v})
		}
		if got := overall(steps); got != c.want {
			t.Errorf("overall(%v) = %s, want %s", c.steps, got, c.want)
		}
	}
	for v, code := range map[Verdict]int{Allowed: 0, NotKMS: 0, S3Access: 1, Diagnosed: 1, Undetermined: 2} {
		if v.ExitCode() != code {
			t.Errorf("%s exits %d, want %d", v, v.ExitCode(), code)
		}
	}
}

func TestContexts(t *testing.T) {
	on, off := true, false
	if got := contexts(ActionGet, &on); len(got) != 2 {
		t.Errorf("a read meets objects written either way: %v", got)
	}
	if got := contexts(ActionPut, &off); len(got) != 1 || got[0] {
		t.Errorf("a write follows the bucket's setting: %v", got)
	}
	if got := contexts(ActionPut, nil); len(got) != 2 {
		t.Errorf("unknown setting: both: %v", got)
	}
}
