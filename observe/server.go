package observe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-cdc/sluice/engine"
)

// Server serves, for one running pipeline:
//
//	/metrics  Prometheus metrics (Metrics.Registry)
//	/healthz  200 while the process is up
//	/readyz   200 when every source and sink is open and the pipeline is
//	          not paused or retrying, else 503 with the phase
//	/status   the Status as JSON (what `sluice status --json` prints)
//	/resume   POST: resume the paused pipeline (202), 409 when it is not
//	          paused; see Resume
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen binds addr (host:port; port 0 picks a free one) and returns the
// server; Serve starts answering. status builds the /status document.
func Listen(addr string, m *Metrics, status func(ctx context.Context) (Status, error)) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, phase := m.Ready()
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, phase)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st, err := status(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
	})
	mux.HandleFunc("POST /resume", func(w http.ResponseWriter, _ *http.Request) {
		_, phase := m.Ready()
		if phase == engine.PhasePaused {
			select {
			case m.resume <- struct{}{}:
				w.WriteHeader(http.StatusAccepted)
				fmt.Fprintln(w, "resuming")
				return
			case <-time.After(time.Second):
			}
		}
		w.WriteHeader(http.StatusConflict)
		fmt.Fprintf(w, "not paused (%s)\n", phase)
	})
	return &Server{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve answers requests until Shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the server, waiting for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
