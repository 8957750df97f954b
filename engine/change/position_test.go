package change

import "testing"

func TestParsePosition(t *testing.T) {
	s := Stream{Source: "app"}
	cases := []struct {
		text string
		want Position
		ok   bool
	}{
		{"1234.5", Position{Source: "app", Offset: 1234, Index: 5}, true},
		{"1234", Position{Source: "app", Offset: 1234}, true},
		{"0/16B3748", Position{Source: "app", Offset: 0x16B3748}, true},
		{"16/B374D848.3", Position{Source: "app", Offset: 0x16<<32 | 0xB374D848, Index: 3}, true},
		{"x/1", Position{}, false},
		{"12.x", Position{}, false},
		{"", Position{}, false},
	}
	for _, c := range cases {
		got, err := ParsePosition(s, c.text)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParsePosition(%q) = %+v, %v; want %+v, ok %t", c.text, got, err, c.want, c.ok)
		}
	}
	p := Position{Source: "app", Offset: 0x16B3748, Index: 2}
	if back, err := ParsePosition(s, p.String()); err != nil || back != p {
		t.Errorf("round trip of %v: %+v, %v", p, back, err)
	}
	if p.LSN() != "0/16B3748" {
		t.Errorf("LSN() = %q", p.LSN())
	}
}

func TestCheckpointMinAndCovers(t *testing.T) {
	a, b := Stream{Source: "a"}, Stream{Source: "b"}
	c1 := Checkpoint{a: {Source: "a", Offset: 10}, b: {Source: "b", Offset: 5}}
	c2 := Checkpoint{a: {Source: "a", Offset: 7}}
	m := Min(c1, c2)
	if len(m) != 1 || m[a].Offset != 7 {
		t.Errorf("Min = %v, want only a at 7 (b is uncommitted in c2)", m)
	}
	if !c1.Covers(Position{Source: "a", Offset: 10}) || c1.Covers(Position{Source: "a", Offset: 10, Index: 1}) {
		t.Error("Covers is not inclusive-at and exclusive-after the checkpoint")
	}
	c2.Advance(Position{Source: "a", Offset: 6})
	if c2[a].Offset != 7 {
		t.Error("Advance moved a checkpoint backwards")
	}
	var back Checkpoint
	raw, _ := c1.MarshalJSON()
	if err := back.UnmarshalJSON(raw); err != nil || len(back) != 2 || back[b].Offset != 5 {
		t.Errorf("JSON round trip: %v, %v", back, err)
	}
}
