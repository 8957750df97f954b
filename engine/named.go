package engine

import (
	"fmt"
	"strings"
)

// named returns err naming the node it came from (`sink "events": open:
// ...`), unless err names it already: components name themselves in
// their own errors (`kafka sink "events": ...`), and an error names its
// component once. doing ("open", "ack ...") may be "".
func named(kind, name, doing string, err error) error {
	label := fmt.Sprintf("%s %q", kind, name)
	switch {
	case strings.Contains(err.Error(), label):
		return err
	case doing == "":
		return fmt.Errorf("%s: %w", label, err)
	}
	return fmt.Errorf("%s: %s: %w", label, doing, err)
}
