package file

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/format"
	"github.com/sluice-cdc/sluice/sinks/txmeta"
)

// bufferSize is the write buffer; a Flush empties it.
const bufferSize = 256 << 10

// Sink writes JSON Lines to a file or standard output. It is used from
// one goroutine, as engine.Sink requires; Saved may be called from
// another.
type Sink struct {
	name   string
	path   string
	format format.Meta
	stdout io.Writer // where path "-" writes; os.Stdout
	// txs numbers transactions (transactions = true) and resolver emits
	// resolved lines (resolved = "..."), each once the bytes recording it
	// are saved (Saved); nil when off.
	txs      *txmeta.Transactions
	resolver *txmeta.Held
	now      func() time.Time

	f      *os.File
	w      *bufio.Writer
	length int64 // bytes in the file, written ones included
	line   []byte
}

var (
	_ engine.Sink         = (*Sink)(nil)
	_ engine.SaveNotifier = (*Sink)(nil)
)

// New builds the sink of a `sink "file"` block.
func New(_ engine.Build, s *dsl.Sink) (engine.Sink, error) {
	if s.File == nil || s.File.Path == "" {
		return nil, engine.Permanent(fmt.Errorf("sink %q: path is required (\"-\" for standard output)", s.Name))
	}
	f, err := format.Lookup(s.File.Format)
	if err != nil {
		return nil, engine.Permanent(fmt.Errorf("sink %q: %w", s.Name, err))
	}
	sk := &Sink{name: s.Name, path: s.File.Path, format: f.(format.Meta), stdout: os.Stdout, now: time.Now}
	if s.File.Transactions {
		sk.txs = txmeta.NewTransactions()
	}
	if s.File.Resolved > 0 {
		sk.resolver = txmeta.NewHeld(s.File.Resolved)
	}
	return sk, nil
}

// saved is what Flush returns and Open reads back.
type saved struct {
	Version    int               `json:"v"`
	Checkpoint change.Checkpoint `json:"checkpoint"`
	Length     int64             `json:"length"`
	// Resolved is the resolver's state (txmeta.Held.State), with
	// resolved lines on: the last T written before Length, and the one
	// held back.
	Resolved json.RawMessage `json:"resolved,omitempty"`
}

// Open truncates the file to the saved length and returns the saved
// checkpoint (see the package documentation).
func (s *Sink) Open(_ context.Context, b []byte) (change.Checkpoint, error) {
	sv := saved{Checkpoint: change.Checkpoint{}}
	if b != nil {
		if err := json.Unmarshal(b, &sv); err != nil || sv.Version != 1 || sv.Length < 0 {
			return nil, engine.Permanent(fmt.Errorf("sink %q: the state file's record for this sink is damaged (%v); move %s and the state file away to start over", s.name, err, s.path))
		}
		if sv.Checkpoint == nil {
			sv.Checkpoint = change.Checkpoint{}
		}
	}
	if s.txs != nil {
		s.txs.Reset()
	}
	if s.resolver != nil {
		if err := s.resolver.Restore(sv.Resolved); err != nil {
			return nil, engine.Permanent(fmt.Errorf("sink %q: the state file's record for this sink is damaged (%v); move %s and the state file away to start over", s.name, err, s.path))
		}
	}
	if s.path == "-" {
		s.w = bufio.NewWriterSize(s.stdout, bufferSize)
		return sv.Checkpoint, nil
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return nil, fmt.Errorf("sink %q: %w", s.name, err)
	}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sink %q: %w", s.name, err)
	}
	st, err := f.Stat()
	if err == nil && st.Size() < sv.Length {
		f.Close()
		return nil, engine.Permanent(fmt.Errorf("sink %q: %s has %d bytes but %d were committed to it: it was changed outside sluice; move it and the state file away to start over", s.name, s.path, st.Size(), sv.Length))
	}
	if err == nil {
		err = f.Truncate(sv.Length)
	}
	if err == nil {
		_, err = f.Seek(sv.Length, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("sink %q: %s: %w", s.name, s.path, err)
	}
	s.f, s.w, s.length = f, bufio.NewWriterSize(f, bufferSize), sv.Length
	return sv.Checkpoint, nil
}

// Write encodes events into the buffer; marks are skipped (with
// transactions, a Mark that ends a transaction writes its END).
func (s *Sink) Write(_ context.Context, events []change.Event) error {
	for i := range events {
		e := &events[i]
		if s.resolver != nil {
			s.resolver.Note(e)
		}
		if s.txs == nil {
			s.line = s.format.Append(s.line[:0], e)
			if err := s.writeLine(); err != nil {
				return err
			}
			continue
		}
		step := s.txs.Next(e)
		for _, t := range []*format.Transaction{step.Prev, step.Begin} {
			if t != nil {
				s.line = s.format.AppendTransaction(s.line[:0], t)
				if err := s.writeLine(); err != nil {
					return err
				}
			}
		}
		s.line = s.format.AppendInTx(s.line[:0], e, step.Order)
		if err := s.writeLine(); err != nil {
			return err
		}
		if step.End != nil {
			s.line = s.format.AppendTransaction(s.line[:0], step.End)
			if err := s.writeLine(); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeLine writes s.line, when not empty, as a line.
func (s *Sink) writeLine() error {
	if len(s.line) == 0 {
		return nil
	}
	s.line = append(s.line, '\n')
	n, err := s.w.Write(s.line)
	s.length += int64(n)
	if err != nil {
		return fmt.Errorf("sink %q: %s: %w", s.name, s.path, err)
	}
	return nil
}

// Flush writes the buffer (and after it the resolved line found due at
// an earlier Flush whose bytes the engine has since saved, see
// txmeta.Held), fsyncs the file and returns the checkpoint and the
// file's length for the next Open.
func (s *Sink) Flush(_ context.Context, cp change.Checkpoint) ([]byte, error) {
	if s.resolver != nil {
		err := s.resolver.Flush(cp, s.now(), func(res *format.Resolved) error {
			s.line = s.format.AppendResolved(s.line[:0], res)
			return s.writeLine()
		})
		if err != nil {
			return nil, err
		}
	}
	if err := s.w.Flush(); err != nil {
		return nil, fmt.Errorf("sink %q: %s: %w", s.name, s.path, err)
	}
	if s.f != nil {
		if err := s.f.Sync(); err != nil {
			return nil, fmt.Errorf("sink %q: %s: fsync: %w", s.name, s.path, err)
		}
	}
	sv := saved{Version: 1, Checkpoint: cp, Length: s.length}
	if s.resolver != nil {
		sv.Resolved = s.resolver.State()
	}
	return json.Marshal(sv)
}

// Saved is engine.SaveNotifier: the bytes of the Flush that brought the
// sink to cp are saved, so a resolved line they hold back may be written.
// It is called from the engine's checkpointer, concurrently with Write
// and Flush.
func (s *Sink) Saved(cp change.Checkpoint) {
	if s.resolver != nil {
		s.resolver.Saved(cp)
	}
}

// Close closes the file without flushing: what was not flushed is not
// committed, and the next Open cuts it off. Standard output is flushed,
// for the person watching.
func (s *Sink) Close() error {
	if s.f == nil {
		if s.w != nil {
			return s.w.Flush()
		}
		return nil
	}
	return s.f.Close()
}
