package format

import (
	"fmt"

	"github.com/sluice-cdc/sluice/engine/change"
)

// Format encodes change events.
type Format interface {
	// Name is the name a pipeline file uses: "native" or "debezium".
	Name() string
	// Append appends e's encoding (one JSON object, no newline) to dst
	// and returns the extended slice. A Mark appends nothing.
	Append(dst []byte, e *change.Event) []byte
}

// Names lists the formats Lookup knows, for diagnostics.
var Names = []string{"native", "debezium"}

// Lookup returns the format with the given name; "" means native.
// The debezium format it returns uses the defaults documented on Debezium.
func Lookup(name string) (Format, error) {
	switch name {
	case "", "native":
		return Native{}, nil
	case "debezium":
		return Debezium{}, nil
	}
	return nil, fmt.Errorf("unknown format %q: use \"native\" or \"debezium\"", name)
}
