package webhook_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/state"
	"github.com/sluice-cdc/sluice/format"
	"github.com/sluice-cdc/sluice/sinks/webhook"
	filesource "github.com/sluice-cdc/sluice/sources/file"
	"github.com/sluice-cdc/sluice/transforms"
)

// TestEngineRefusedEventIsDeadLettered runs a file of changes through
// the engine into a webhook whose receiver answers 400 to one order and
// 503 now and then: with on_error = "dead_letter" the refused order ends
// in the state file's dead-letter store with the receiver's reason, and
// every other order arrives, each batch signed.
func TestEngineRefusedEventIsDeadLettered(t *testing.T) {
	var mu sync.Mutex
	got := map[int64]int{}
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if !webhook.Verify([]byte("k"), body, r.Header.Get(webhook.HeaderSignature)) {
			t.Errorf("bad signature on %s", body)
		}
		if strings.Contains(string(body), `"order_id":13}`) {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, "order 13 is on hold")
			return
		}
		if calls%5 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var raws []json.RawMessage
		if err := json.Unmarshal(body, &raws); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		for _, raw := range raws {
			e, err := format.DecodeNative(raw)
			if err != nil {
				t.Errorf("event %s: %v", raw, err)
				continue
			}
			got[e.After.Get("order_id").(int64)]++
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := 0; i < 60; i++ {
		fmt.Fprintf(w, `{"op":"insert","schema":"public","table":"orders","key":{"order_id":%d},"after":{"order_id":%d}}`+"\n", i, i)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	statePath := filepath.Join(dir, "state.db")
	cfg, _, diags := dsl.Load("orders.hcl", []byte(fmt.Sprintf(`
pipeline "orders" {
  state    = %q
  on_error = "dead_letter"
}
source "file" "in" { path = %q }
sink "webhook" "notify" {
  from   = source.in
  url    = %q
  secret = "k"
  batch  = 8
  retry  = { max = 5, backoff = "1ms" }
}
`, statePath, in, srv.URL)), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	g, err := components.Compile(cfg, components.Kinds{
		Sources:   map[string]func(engine.Build, *dsl.Source) (engine.Source, error){"file": filesource.New},
		Sinks:     map[string]func(engine.Build, *dsl.Sink) (engine.Sink, error){"webhook": webhook.New},
		Transform: transforms.New,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := g.Run(ctx, engine.RunOptions{Logger: slog.New(slog.DiscardHandler), MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	for i := int64(0); i < 60; i++ {
		if i != 13 && got[i] == 0 {
			t.Errorf("order %d never arrived", i)
		}
	}
	if got[13] != 0 {
		t.Errorf("the refused order 13 was acknowledged")
	}
	mu.Unlock()
	st, err := state.Open(statePath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	letters, err := st.Letters("", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 || letters[0].Event.After.Get("order_id") != int64(13) || !strings.Contains(letters[0].Err, "order 13 is on hold") {
		t.Fatalf("dead letters %+v, want order 13 with the receiver's reason", letters)
	}
}
