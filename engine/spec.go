package engine

import (
	"log/slog"
	"path/filepath"
	"time"
)

// Spec is a pipeline as the engine runs it: its settings and its nodes,
// each with the constructor of its component. The engine knows nothing
// of the file a pipeline was written in: package components compiles a
// checked pipeline file into a Spec, with the constructors its kinds
// registered.
type Spec struct {
	Pipeline   Pipeline
	Sources    []SourceNode
	Transforms []TransformNode
	Sinks      []SinkNode
}

// Pipeline is what the engine and every component may know of the
// pipeline they run in.
type Pipeline struct {
	Name string
	// State is the state file; "" means ".sluice/NAME.db" (StatePath).
	State string
	// OnError is retry | dead_letter | pause | fail; "" means retry.
	OnError string
	// MaskKey keys the "hash" mask. It is a secret: never log it.
	MaskKey string
	// Instance tells apart the processes that run the same pipeline side
	// by side (`sluice run --instance`); "" for one process. A component
	// that must be told apart appends it to what it names: the Kafka
	// sink's transactional id, the Kafka source's group member id.
	Instance string
}

// StatePath returns the pipeline's state file: State, else
// ".sluice/NAME.db".
func (p Pipeline) StatePath() string {
	if p.State != "" {
		return p.State
	}
	return filepath.Join(".sluice", p.Name+".db")
}

// LogValue keeps the mask key out of logs.
func (p Pipeline) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", p.Name), slog.String("state", p.StatePath()),
		slog.String("on_error", p.OnError), slog.String("instance", p.Instance))
}

// SourceNode is a source of the graph.
type SourceNode struct {
	Name string
	Type string // its kind, for messages: "postgres"
	New  func(Build) (Source, error)
}

// TransformNode is a transform of the graph, reading the nodes From.
type TransformNode struct {
	Name string
	From []Ref
	// At is where the transform is declared, for messages
	// ("pipeline.hcl:12,1-20"); "" when unknown.
	At  string
	New func(Build) (Transform, error)
}

// SinkNode is a sink of the graph, reading the nodes From.
type SinkNode struct {
	Name string
	Type string // its kind, for messages: "mysql"
	From []Ref
	// Linger, when set, is the sink's own least time between commits
	// (its `linger`), in place of RunOptions.MinFlushInterval.
	Linger time.Duration
	New    func(Build) (Sink, error)
}

// Ref names the node a transform or sink reads: a source or a
// transform.
type Ref struct {
	Transform bool // a transform; else a source
	Name      string
	At        string // where the reference is written, for messages; may be ""
}

func (r Ref) String() string {
	if r.Transform {
		return "transform." + r.Name
	}
	return "source." + r.Name
}

// Build is what constructors get besides their block.
type Build struct {
	Pipeline Pipeline
	Logger   *slog.Logger
	// Observer is the run's observer: a component reports what only it
	// sees through the optional hooks it implements, such as
	// RecoveryObserver. Graph.Run sets it; it is nil where a component
	// is built outside a run (Compile's transforms, ReplayDeadLetters,
	// `sluice drop` and `sluice plan`), so check before use.
	Observer Observer
}

// BatchSizer is implemented by a sink that says how many events it takes
// before it commits at the next boundary (its batch_size); the engine
// uses 1000 for a sink that does not, or says 0, and RunOptions.BatchSize
// over either.
type BatchSizer interface {
	BatchSize() int
}
