package observe

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// Metrics turns the engine's Observer hooks into Prometheus metrics on a
// registry of its own (plus the Go and process collectors). Pass it as
// engine.RunOptions.Observer and serve Registry with Server. Safe for
// concurrent use.
type Metrics struct {
	Registry *prometheus.Registry

	cfg *dsl.Config

	eventsIn     *prometheus.CounterVec
	snapshotRows *prometheus.CounterVec
	written      *prometheus.CounterVec
	committed    *prometheus.CounterVec
	batch        *prometheus.HistogramVec
	commitTook   *prometheus.HistogramVec
	errors       *prometheus.CounterVec
	letters      *prometheus.CounterVec
	restarts     prometheus.Counter
	recoveries   *prometheus.CounterVec

	mu    sync.Mutex
	lags  map[string]engine.SinkLag
	phase engine.Phase
	kafka map[string][]engine.PartitionLag // per Kafka source

	resume chan struct{} // POST /resume sends, Run receives while paused
}

var (
	_ engine.Observer          = (*Metrics)(nil)
	_ engine.RecoveryObserver  = (*Metrics)(nil)
	_ engine.SourceLagObserver = (*Metrics)(nil)
)

// probeTimeout bounds each PostgreSQL query a scrape makes.
const probeTimeout = 2 * time.Second

// NewMetrics returns the metrics of the pipeline cfg. Every sink of cfg
// is reported from the start (lag 0, counters 0), so that alerts see the
// series before the first event.
func NewMetrics(cfg *dsl.Config) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		cfg:      cfg,
		eventsIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_source_events_total",
			Help: "Events read from a source and handed on (rows, snapshot rows and marks)."}, []string{"source"}),
		snapshotRows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_snapshot_rows_total",
			Help: "Rows read by a source's snapshots: the initial one and incremental ones (sluice snapshot, verify --repair, snapshot = \"incremental\")."}, []string{"source"}),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_sink_events_written_total",
			Help: "Events handed to a sink (not yet durable)."}, []string{"sink"}),
		committed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_sink_events_committed_total",
			Help: "Events a sink made durable."}, []string{"sink"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_sink_batch_events",
			Help:    "Events per sink commit (flush).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9)}, []string{"sink"}),
		commitTook: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_sink_commit_seconds",
			Help:    "Time a sink's commit (flush) took.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}, []string{"sink"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_errors_total",
			Help: `Errors that ended an attempt, by stage ("source.NAME", "sink.NAME", "transform.NAME", "checkpoint").`}, []string{"stage"}),
		letters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_dead_letters_total",
			Help: `Events dead-lettered by this process, by stage ("sink.NAME" or "transform.NAME").`}, []string{"stage"}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_restarts_total",
			Help: "Times the engine reopened everything from the checkpoints after an error."}),
		recoveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_slot_recoveries_total",
			Help: `PostgreSQL sources with on_slot_lost = "resnapshot": times the replication slot was lost and recreated, and the tables copied again.`}, []string{"source"}),
		lags:   map[string]engine.SinkLag{},
		kafka:  map[string][]engine.PartitionLag{},
		resume: make(chan struct{}),
	}
	for _, s := range cfg.Sources {
		m.eventsIn.WithLabelValues(s.Name)
		if s.Type == "postgres" {
			m.snapshotRows.WithLabelValues(s.Name)
			m.recoveries.WithLabelValues(s.Name)
		}
	}
	for _, s := range cfg.Sinks {
		m.written.WithLabelValues(s.Name)
		m.committed.WithLabelValues(s.Name)
		m.errors.WithLabelValues("sink." + s.Name)
		m.letters.WithLabelValues("sink." + s.Name)
		m.lags[s.Name] = engine.SinkLag{}
	}
	m.Registry.MustRegister(m.eventsIn, m.snapshotRows, m.written, m.committed, m.batch, m.commitTook,
		m.errors, m.letters, m.restarts, m.recoveries, liveCollector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) Read(source string, n, snapshot int) {
	m.eventsIn.WithLabelValues(source).Add(float64(n))
	if snapshot > 0 {
		m.snapshotRows.WithLabelValues(source).Add(float64(snapshot))
	}
}

func (m *Metrics) Written(sink string, n int) { m.written.WithLabelValues(sink).Add(float64(n)) }

func (m *Metrics) Flushed(sink string, n int, took time.Duration) {
	m.committed.WithLabelValues(sink).Add(float64(n))
	m.batch.WithLabelValues(sink).Observe(float64(n))
	m.commitTook.WithLabelValues(sink).Observe(took.Seconds())
}

func (m *Metrics) Lag(sink string, l engine.SinkLag) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lags[sink] = l
}

func (m *Metrics) Failed(stage string, _ error) { m.errors.WithLabelValues(stage).Inc() }
func (m *Metrics) DeadLettered(stage string)    { m.letters.WithLabelValues(stage).Inc() }
func (m *Metrics) Restarted()                   { m.restarts.Inc() }

// Recovered counts a source's recovery from a lost replication slot
// (engine.RecoveryObserver).
func (m *Metrics) Recovered(source string) { m.recoveries.WithLabelValues(source).Inc() }

// SourceLag keeps a Kafka source's lag per partition for
// sluice_source_kafka_lag_records (engine.SourceLagObserver).
func (m *Metrics) SourceLag(source string, parts []engine.PartitionLag) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kafka[source] = append([]engine.PartitionLag(nil), parts...)
}

func (m *Metrics) Phase(p engine.Phase) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.phase = p
}

// Resume is the channel to pass as engine.RunOptions.Resume: the
// server's POST /resume sends on it while the pipeline is paused.
func (m *Metrics) Resume() <-chan struct{} { return m.resume }

// Ready reports whether every source and sink is open and the pipeline is
// not paused or retrying, with the current phase.
func (m *Metrics) Ready() (bool, engine.Phase) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.phase == engine.PhaseRunning, m.phase
}

// liveCollector reports what is measured at scrape time: lag in seconds
// from the engine's last report, lag in bytes and retained WAL from each
// PostgreSQL server, and the run's phase.
type liveCollector struct{ m *Metrics }

var (
	descLagSeconds = prometheus.NewDesc("sluice_sink_lag_seconds",
		"0 when the sink has committed everything read, else now minus the source commit time of the oldest change it has not.", []string{"sink"}, nil)
	descLastCommit = prometheus.NewDesc("sluice_sink_last_commit_timestamp_seconds",
		"Source commit time (Unix seconds) of the last change the sink committed.", []string{"sink"}, nil)
	descLagBytes = prometheus.NewDesc("sluice_sink_lag_bytes",
		"PostgreSQL sources: current WAL position minus the last commit LSN the sink committed.", []string{"sink", "source"}, nil)
	descWALLag = prometheus.NewDesc("sluice_source_wal_lag_bytes",
		"PostgreSQL sources: current WAL position minus the slot's confirmed_flush_lsn.", []string{"source", "slot"}, nil)
	descWALRetained = prometheus.NewDesc("sluice_source_wal_retained_bytes",
		"PostgreSQL sources: WAL the server keeps for the slot (current position minus restart_lsn).", []string{"source", "slot"}, nil)
	descSafeWAL = prometheus.NewDesc("sluice_source_slot_safe_wal_bytes",
		"PostgreSQL sources: WAL that can still be written before max_slot_wal_keep_size invalidates the slot (pg_replication_slots.safe_wal_size; absent when there is no limit). Alert well above 0.", []string{"source", "slot"}, nil)
	descSlotUp = prometheus.NewDesc("sluice_source_slot_up",
		"PostgreSQL sources: 1 when the slot exists and the server answered, else 0.", []string{"source", "slot"}, nil)
	descPhase = prometheus.NewDesc("sluice_phase",
		"1 for the phase the pipeline is in (starting, running, retrying, paused, stopped, failed), 0 for the others.", []string{"phase"}, nil)
	descKafkaLag = prometheus.NewDesc("sluice_source_kafka_lag_records",
		"Kafka sources: the partition's high watermark (last stable offset) at the last fetch minus the next offset after what every sink has made durable.", []string{"source", "topic", "partition"}, nil)
)

func (c liveCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLagSeconds, descLastCommit, descLagBytes, descWALLag, descWALRetained, descSafeWAL, descSlotUp, descPhase, descKafkaLag} {
		ch <- d
	}
}

func (c liveCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	c.m.mu.Lock()
	lags := make(map[string]engine.SinkLag, len(c.m.lags))
	for k, v := range c.m.lags {
		lags[k] = v
	}
	phase := c.m.phase
	for source, parts := range c.m.kafka {
		for _, p := range parts {
			ch <- prometheus.MustNewConstMetric(descKafkaLag, prometheus.GaugeValue, float64(p.Lag()), source, p.Topic, strconv.Itoa(int(p.Partition)))
		}
	}
	c.m.mu.Unlock()
	for sink, l := range lags {
		ch <- prometheus.MustNewConstMetric(descLagSeconds, prometheus.GaugeValue, l.Seconds(now), sink)
		if !l.CommitTime.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastCommit, prometheus.GaugeValue, float64(l.CommitTime.UnixNano())/1e9, sink)
		}
	}
	for p := engine.PhaseStarting; p <= engine.PhaseFailed; p++ {
		v := 0.0
		if p == phase {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descPhase, prometheus.GaugeValue, v, p.String())
	}
	for _, s := range c.m.cfg.Sources {
		if s.Type != "postgres" || s.Postgres == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		w, err := Slot(ctx, c.m.cfg.Pipeline.Name, s.Postgres)
		cancel()
		up := 0.0
		if err == nil && w.Exists {
			up = 1
			ch <- prometheus.MustNewConstMetric(descWALLag, prometheus.GaugeValue, float64(w.LagBytes), s.Name, w.Slot)
			ch <- prometheus.MustNewConstMetric(descWALRetained, prometheus.GaugeValue, float64(w.RetainedBytes), s.Name, w.Slot)
			if w.SafeWALSize != nil {
				ch <- prometheus.MustNewConstMetric(descSafeWAL, prometheus.GaugeValue, float64(*w.SafeWALSize), s.Name, w.Slot)
			}
		}
		ch <- prometheus.MustNewConstMetric(descSlotUp, prometheus.GaugeValue, up, s.Name, w.Slot)
		if err != nil {
			continue
		}
		for sink, l := range lags {
			if b := bytesBehind(sourceStreams(l.Committed, s.Name), map[string]uint64{s.Name: w.Current}); b != nil {
				ch <- prometheus.MustNewConstMetric(descLagBytes, prometheus.GaugeValue, float64(*b), sink, s.Name)
			}
		}
	}
}

// sourceStreams is the part of cp that belongs to one source.
func sourceStreams(cp change.Checkpoint, source string) change.Checkpoint {
	out := change.Checkpoint{}
	for s, p := range cp {
		if s.Source == source {
			out[s] = p
		}
	}
	return out
}
