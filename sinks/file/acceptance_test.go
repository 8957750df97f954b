package file_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/sinks/file"
	"github.com/sluice-cdc/sluice/sinks/sinktest"
)

// TestAcceptance runs the acceptance kit every sink passes against a file
// of its own per case, in the native format, read back line by line as a
// reader of the file would.
func TestAcceptance(t *testing.T) {
	sinktest.Run(t, sinktest.Factory{
		Name: "file",
		Kind: sinktest.Log,
		NewTarget: func(t *testing.T) *sinktest.Target {
			path := filepath.Join(t.TempDir(), "out", "changes.jsonl")
			block := &dsl.Sink{Type: "file", Name: "out", File: &dsl.FileSink{Path: path}}
			return &sinktest.Target{
				New:      func(b engine.Build) (engine.Sink, error) { return file.New(b, block) },
				Messages: func(t *testing.T) []sinktest.Message { return fileMessages(t, path) },
			}
		},
		NoReject: "a local file refuses no event: the file sink never returns an *engine.RejectError",
		Truncate: sinktest.TruncateMessage,
		// Lines written after the last Flush may reach the file (when the
		// write buffer fills); the next Open cuts them off.
		UnflushedVisible: true,
	})
}

// fileMessages reads the file's complete lines.
func fileMessages(t *testing.T, path string) []sinktest.Message {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []sinktest.Message
	for len(b) > 0 {
		line, rest, ok := bytes.Cut(b, []byte("\n"))
		if !ok {
			break // a line being written
		}
		b = rest
		m, err := sinktest.DecodeNative(line)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}
