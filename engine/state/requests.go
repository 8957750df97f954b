package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// SnapshotRequest asks a source to copy tables again while it streams
// (`sluice snapshot`, `sluice verify --repair`). It travels as a request
// file beside the state file (the state file itself has one writer, the
// running process): RequestSnapshot writes it, the running pipeline takes
// it within a second (or the next `sluice run` does, at start), hands it
// to its source, which keeps it in its own state, and removes the file.
type SnapshotRequest struct {
	// ID names the request in status and logs; unique per state file.
	ID     string   `json:"id"`
	Source string   `json:"source"`
	Tables []string `json:"tables"` // "schema.table"
	// Sink, when set, is the one sink that receives the copy.
	Sink string `json:"sink,omitempty"`
	// Where is an SQL predicate over the table's columns: only the rows
	// it selects are copied (a partial backfill).
	Where string `json:"where,omitempty"`
	// Ranges, when set, limits the copy to these key ranges (verify
	// --repair: the ranges whose checksums differ).
	Ranges []KeyRange `json:"ranges,omitempty"`
	// Absent lists, per table, keys the targets hold that the source
	// did not have when the request was made (verify --repair's extra
	// rows): each is deleted in the targets unless the source has it
	// when the copy reaches it.
	Absent    []TableKey `json:"absent,omitempty"`
	Requested time.Time  `json:"requested"`
}

// KeyRange is a range of one table's primary keys, each key the text
// form of its columns in key order, both ends included; nil is open.
type KeyRange struct {
	Table string   `json:"table"`
	From  []string `json:"from,omitempty"`
	To    []string `json:"to,omitempty"`
}

// TableKey is one row's primary key, in text form, in key order.
type TableKey struct {
	Table string   `json:"table"`
	Key   []string `json:"key"`
}

const requestSuffix = ".json"

func requestDir(path string) string { return path + ".requests" }

// RequestSnapshot writes req as a request file beside the state file at
// path (atomically: the pipeline never reads half a request).
func RequestSnapshot(path string, req SnapshotRequest) error {
	dir := requestDir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("snapshot request: %w", err)
	}
	b, err := json.MarshalIndent(req, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+req.ID+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("snapshot request: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, req.ID+requestSuffix)); err != nil {
		return fmt.Errorf("snapshot request: %w", err)
	}
	return nil
}

// SnapshotRequests returns the requests waiting beside the state file at
// path, oldest first.
func SnapshotRequests(path string) ([]SnapshotRequest, error) {
	entries, err := os.ReadDir(requestDir(path))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []SnapshotRequest
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), requestSuffix) || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(requestDir(path), e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var req SnapshotRequest
		if err := json.Unmarshal(b, &req); err != nil {
			errs = append(errs, fmt.Errorf("snapshot request %s: %w", e.Name(), err))
			continue
		}
		out = append(out, req)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Requested.Before(out[j].Requested) })
	return out, errors.Join(errs...)
}

// SnapshotRequestPending reports whether the request is still waiting to
// be taken.
func SnapshotRequestPending(path, id string) bool {
	_, err := os.Stat(filepath.Join(requestDir(path), id+requestSuffix))
	return err == nil
}

// TakeSnapshotRequest removes a request its source has taken.
func TakeSnapshotRequest(path string, req SnapshotRequest) {
	_ = os.Remove(filepath.Join(requestDir(path), req.ID+requestSuffix))
}

// FailSnapshotRequest sets aside a request its source refused, with the
// reason, as ID.failed beside the waiting ones.
func FailSnapshotRequest(path string, req SnapshotRequest, cause error) {
	dir := requestDir(path)
	_ = os.WriteFile(filepath.Join(dir, req.ID+".failed"), []byte(cause.Error()+"\n"), 0o644)
	_ = os.Remove(filepath.Join(dir, req.ID+requestSuffix))
}

// SnapshotRequestFailure returns why the request was refused, "" if it
// was not (or not yet).
func SnapshotRequestFailure(path, id string) string {
	b, err := os.ReadFile(filepath.Join(requestDir(path), id+".failed"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
