package file

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/format"
)

const (
	// BatchSize is the most events one Read returns.
	BatchSize = 1000
	// MaxLine is the longest line accepted, in bytes.
	MaxLine = 16 << 20
	// Poll is how often a following source looks for appended lines.
	Poll = 200 * time.Millisecond
)

// Source reads one JSON Lines file. Read and Ack may be called from
// different goroutines; Read from one at a time.
type Source struct {
	name   string
	path   string
	follow bool
	poll   time.Duration

	f       *os.File
	r       *bufio.Reader
	offset  int64  // byte offset of the next line
	line    int    // number of the next line (1-based)
	partial []byte // an incomplete last line (follow), read again later
}

var _ engine.Source = (*Source)(nil)

// New builds the source of a `source "file"` block.
func New(_ engine.Build, s *dsl.Source) (engine.Source, error) {
	if s.File == nil || s.File.Path == "" {
		return nil, engine.Permanent(fmt.Errorf("source %q: path is required", s.Name))
	}
	return &Source{name: s.Name, path: s.File.Path, follow: s.File.Follow, poll: Poll}, nil
}

// Open opens the file and skips every line up to and including the one
// at the checkpoint of this source's stream.
func (s *Source) Open(ctx context.Context, from change.Checkpoint, _ engine.State) error {
	f, err := os.Open(s.path)
	if err != nil {
		return engine.Permanent(fmt.Errorf("source %q: %w", s.name, err))
	}
	s.f, s.r, s.offset, s.line = f, bufio.NewReaderSize(f, 64<<10), 0, 1
	p, ok := from[change.Stream{Source: s.name}]
	if !ok {
		return nil
	}
	for {
		start := s.offset
		_, complete, err := s.next()
		switch {
		case err != nil:
			return err
		case !complete || int64(p.Offset) < start:
			return engine.Permanent(fmt.Errorf("source %q: %s: the checkpoint is at byte %d, which is not the start of a line of this file any more (was it replaced or rewritten?); move the sink's output and the state file away to start over", s.name, s.path, p.Offset))
		case int64(p.Offset) == start:
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// next reads the next line, without its newline, and advances offset and
// line past it. complete is false at the end of the file: with follow
// the bytes read so far are kept for the next call and line is nil;
// without follow a last line lacking its newline is returned as complete.
func (s *Source) next() (line []byte, complete bool, err error) {
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(s.partial)+len(chunk) > MaxLine {
			return nil, false, engine.Permanent(fmt.Errorf("%s:%d: line longer than %d bytes", s.path, s.line, MaxLine))
		}
		switch {
		case err == nil:
			if len(s.partial) > 0 {
				s.partial = append(s.partial, chunk...)
				chunk, s.partial = s.partial, nil
			}
			s.offset += int64(len(chunk))
			s.line++
			return chunk[:len(chunk)-1], true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			s.partial = append(s.partial, chunk...)
		case errors.Is(err, io.EOF):
			s.partial = append(s.partial, chunk...)
			if s.follow || len(s.partial) == 0 {
				return nil, false, nil
			}
			chunk, s.partial = s.partial, nil
			s.offset += int64(len(chunk))
			s.line++
			return chunk, true, nil
		default:
			return nil, false, fmt.Errorf("source %q: %s: %w", s.name, s.path, err)
		}
	}
}

// Read returns up to BatchSize events. Without follow it returns io.EOF
// once the file is exhausted; with follow it waits for appended lines.
func (s *Source) Read(ctx context.Context) ([]change.Event, error) {
	var out []change.Event
	for len(out) < BatchSize {
		start, lineNo := s.offset, s.line
		line, complete, err := s.next()
		if err != nil {
			return nil, err
		}
		if !complete {
			if len(out) > 0 {
				return out, nil
			}
			if !s.follow {
				return nil, io.EOF
			}
			if err := wait(ctx, s.poll); err != nil {
				return nil, err
			}
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		e, err := format.DecodeNative(line)
		if err != nil {
			return nil, engine.Permanent(fmt.Errorf("%s:%d: %w", s.path, lineNo, err))
		}
		e.Position = change.Position{Source: s.name, Offset: uint64(start)}
		e.Boundary = true
		out = append(out, e)
	}
	return out, nil
}

func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ack does nothing: the file is not consumed.
func (s *Source) Ack(context.Context, change.Checkpoint) error { return nil }

// Close closes the file.
func (s *Source) Close() error {
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}
