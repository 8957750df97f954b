package observe

import (
	"os"
	"testing"

	"github.com/sluice-cdc/sluice/internal/pgtest"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m, &cluster)) }
