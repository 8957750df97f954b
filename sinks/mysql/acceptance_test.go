package mysql

import (
	"testing"

	"github.com/sluice-cdc/sluice/sinks/sinktest"
)

// TestAcceptance runs the acceptance kit every sink passes against a
// database of its own per case on the test server (sqltabletest's
// target; the SQL-specific cases are TestConformance's).
func TestAcceptance(t *testing.T) { sinktest.Run(t, sinktest.SQLTable(target())) }
