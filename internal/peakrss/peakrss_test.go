package peakrss

import (
	"os"
	"os/exec"
	"testing"
)

// TestChildPeakIsNotTheParents is the reason this package exists: the
// parent holds a large buffer while it starts a small child, whose
// ru_maxrss then reports the parent's peak; the sampled VmHWM does not.
func TestChildPeakIsNotTheParents(t *testing.T) {
	buf := make([]byte, 256<<20)
	for i := range buf {
		buf[i] = 1
	}
	cmd := exec.Command("/bin/sleep", "0.3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := Start(cmd.Process.Pid)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	peak := s.Stop()
	if peak == 0 || MB(peak) > 32 {
		t.Errorf("sampled peak of sleep = %.1f MB, want between 0 and 32 MB", MB(peak))
	}
	self, err := Read("self")
	if err != nil {
		t.Fatal(err)
	}
	if MB(self) < 256 {
		t.Errorf("own VmHWM %.1f MB, want >= 256 MB after touching a 256 MB buffer", MB(self))
	}
	t.Logf("parent %.1f MB, child %.1f MB", MB(self), MB(peak))
	_ = buf[len(buf)-1]
}

func TestReadMissingProcess(t *testing.T) {
	if _, err := Read("999999999"); err == nil || !os.IsNotExist(err) {
		t.Errorf("Read of a missing pid: %v, want not-exist", err)
	}
}
