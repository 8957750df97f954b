package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/state"
	"github.com/sluice-cdc/sluice/observe"
)

// runPipeline runs a pipeline until it is stopped. The first SIGINT or
// SIGTERM stops reading, drains what is in flight, commits and exits 0; a
// second one cancels at once (checkpoints keep what was committed).
//
// --instance NAME tells apart processes that run the same pipeline side
// by side, sharing a Kafka source's partitions through its consumer
// group: it sets SLUICE_INSTANCE (engine.InstanceEnv), which the
// exactly-once Kafka sink appends to its transactional id so the
// processes do not fence each other, and which the Kafka source makes its
// static group membership. Give each process a name it keeps across
// restarts (a pod ordinal, a host name), so a restarted process fences
// its own predecessor's open transaction and takes its partitions back
// at once; and give each its own state file (its own working directory,
// or pipeline.state set through a variable).
//
// With --http it serves /metrics, /healthz, /readyz and /status, and
// takes POST /resume (package observe). On a terminal it draws a progress bar per initial snapshot;
// elsewhere (CI logs, files) it never does.
func (c *cli) runPipeline(args []string) int {
	fs := c.flags("run", "FILE [-var NAME=value] [--log-format text|json] [--http 127.0.0.1:9187] [--instance NAME]")
	vars := varsFlag{}
	fs.Var(vars, "var", "set a variable: -var NAME=value (repeatable)")
	logFormat := fs.String("log-format", "auto", "text, json, or auto (text on a terminal, json otherwise)")
	httpAddr := fs.String("http", "", "serve /metrics, /healthz, /readyz and /status on this address (host:port)")
	instance := fs.String("instance", "", "name of this process among those running the pipeline side by side (sets "+engine.InstanceEnv+"; keep it across restarts)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file when it stops (for `go tool pprof`)")
	files, code, ok := c.parseFiles(fs, args, 1, 1)
	if !ok {
		return code
	}
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			c.errorf("--cpuprofile: %v", err)
			return exitUsage
		}
		defer stopProfile()
	}
	logs := &swapWriter{w: c.stderr}
	terminal := isTerminal(c.stderr)
	logger, err := newLogger(logs, *logFormat, terminal)
	if err != nil {
		c.errorf("%v", err)
		return exitUsage
	}
	// First, so that a stop while the pipeline file loads and the slots
	// are checked is graceful too, not the signal's default death.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := c.stop
	if stop == nil {
		stop = signalStop(cancel, logger)
	}
	if *instance != "" {
		if err := os.Setenv(engine.InstanceEnv, *instance); err != nil {
			c.errorf("--instance: %v", err)
			return exitUsage
		}
	}
	cfg := c.load(files[0], vars, false)
	if cfg == nil {
		return exitFindings
	}
	g, err := components.Compile(cfg, components.Registry(), logger)
	if err != nil {
		c.errorf("%v", err)
		return exitFindings
	}

	opts := engine.RunOptions{Logger: logger, Stop: stop}
	statePath := components.Settings(cfg).StatePath()
	if err := checkSlots(cfg, statePath); err != nil {
		logger.Error("not starting", "err", err)
		return exitFindings
	}
	if *httpAddr != "" {
		metrics := observe.NewMetrics(cfg)
		opts.Observer = metrics
		opts.Resume = metrics.Resume()
		srv, err := observe.Listen(*httpAddr, metrics, func(ctx context.Context) (observe.Status, error) {
			st, err := state.StatusFile(statePath)
			if err != nil {
				return observe.Status{}, err
			}
			return observe.Build(ctx, cfg, st, observe.Options{Probe: true}), nil
		})
		if err != nil {
			c.errorf("%v", err)
			return exitUsage
		}
		go func() {
			if err := srv.Serve(); err != nil {
				logger.Error("http server stopped", "err", err)
			}
		}()
		defer srv.Shutdown(context.WithoutCancel(ctx))
		logger.Info("serving /metrics, /healthz, /readyz and /status", "addr", "http://"+srv.Addr())
	}
	if terminal {
		barsCtx, stopBars := context.WithCancel(ctx)
		barsDone := make(chan struct{})
		go func() { defer close(barsDone); snapshotBars(barsCtx, c.stderr, logs, cfg, statePath) }()
		defer func() { stopBars(); <-barsDone }()
	}
	logger.Info("pipeline starting", "pipeline", cfg.Pipeline.Name, "state", statePath)
	if err := g.Run(ctx, opts); err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("pipeline stopped", "err", err)
		return exitFindings
	}
	logger.Info("pipeline stopped", "pipeline", cfg.Pipeline.Name)
	return exitOK
}

// startCPUProfile profiles the process into path until the returned
// function runs.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// checkSlots refuses to run a pipeline whose PostgreSQL slot was dropped
// behind its back (observe.CheckSlots). A state file that cannot be read
// here is left for the engine to report.
func checkSlots(cfg *dsl.Config, statePath string) error {
	st, err := state.Inspect(statePath)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	return observe.CheckSlots(ctx, cfg, st)
}

// signalStop returns a channel closed on the first SIGINT/SIGTERM and
// cancels on the second.
func signalStop(cancel context.CancelFunc, logger *slog.Logger) <-chan struct{} {
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		logger.Info("stopping: draining and committing; signal again to stop at once", "signal", s.String())
		close(stop)
		<-sigs
		logger.Warn("stopping at once; uncommitted work will be redone on restart")
		cancel()
	}()
	return stop
}

// newLogger returns text logs on a terminal and JSON otherwise, unless
// format says which.
func newLogger(w io.Writer, format string, terminal bool) (*slog.Logger, error) {
	if format == "auto" {
		format = "json"
		if terminal {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, errors.New(`--log-format: want text, json or auto, got "` + format + `"`)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
