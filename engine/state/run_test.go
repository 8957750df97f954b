package state

import (
	"testing"
)

// TestRunInStatusFile: the phase, pause and Kafka lag a running pipeline
// reports reach the status file at once (WriteStatus); once it stops,
// Inspect reports the last phase it wrote, and a phase it never ended
// (killed while paused) as stopped.
func TestRunInStatusFile(t *testing.T) {
	s, path := open(t)
	s.UpdateRun(func(r *Run) {
		r.Phase, r.Paused = "paused", &Paused{Stage: "sink.out", Error: "too long"}
		r.LastError = &LastError{Stage: "sink.out", Error: "too long"}
	})
	s.SetKafkaLag("k", []KafkaPartition{{Topic: "t", Partition: 1, HighWatermark: 9, Committed: 5, Lag: 4}})
	s.WriteStatus()
	st, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running || st.Run == nil || st.Run.Phase != "paused" || st.Run.Paused.Stage != "sink.out" || st.Run.PID == 0 {
		t.Fatalf("while running: %+v (run %+v)", st, st.Run)
	}
	if k := st.Sources["k"].Kafka; len(k) != 1 || k[0].Lag != 4 {
		t.Fatalf("kafka lag %+v", k)
	}
	s.Close()
	st, err = Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Running || st.Run == nil || st.Run.Phase != "stopped" || st.Run.Paused != nil || st.Run.LastError == nil {
		t.Fatalf("after a close without a last phase: run %+v", st.Run)
	}
}

// TestResumeRequest: RequestResume leaves a file the store takes once.
func TestResumeRequest(t *testing.T) {
	s, path := open(t)
	if s.TakeResume() || ResumePending(path) {
		t.Fatal("a request before any was made")
	}
	if err := RequestResume(path); err != nil {
		t.Fatal(err)
	}
	if !ResumePending(path) || !s.TakeResume() || ResumePending(path) || s.TakeResume() {
		t.Fatal("the request was not taken exactly once")
	}
}
