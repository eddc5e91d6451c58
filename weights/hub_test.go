package weights

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// The cases are shared with the JS package's test (js/test/hub.test.mjs).
func TestHubFile(t *testing.T) {
	t.Setenv("HF_ENDPOINT", "")
	raw, err := os.ReadFile("../testdata/hub-ids.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		ID, File, Want string
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 8 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		got, ok := HubFile(c.ID, c.File)
		if c.Want == "" {
			if ok {
				t.Errorf("HubFile(%q) = %q, want not an id", c.ID, got)
			}
			continue
		}
		if !ok || got != c.Want {
			t.Errorf("HubFile(%q, %q) = %q, %v; want %q", c.ID, c.File, got, ok, c.Want)
		}
	}
}

// Every known model's config is what ConfigFrom infers from a file of its
// real shapes without metadata, as Hugging Face publishes them.
func TestKnownModelsInferred(t *testing.T) {
	for _, m := range Known {
		specs := synthSpecs(m.Config, safetensors.F32, true)
		hdr, sizes, err := safetensors.EncodeHeader(specs, nil)
		if err != nil {
			t.Fatal(err)
		}
		size := int64(8 + len(hdr))
		for _, n := range sizes {
			size += n
		}
		h, err := safetensors.ParseHeader(hdr, size)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		got, err := ConfigFrom(h, nil)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if got != m.Config {
			t.Errorf("%s: inferred %+v, want %+v", m.Name, got, m.Config)
		}
		if m.VisionBytes < 300e6 {
			t.Errorf("%s: vision bytes %d", m.Name, m.VisionBytes)
		}
		if u, _ := HubFile(m.Repo, "model.safetensors"); m.URL != u {
			t.Errorf("%s: URL %s", m.Name, m.URL)
		}
	}
}

func TestHubEndpoint(t *testing.T) {
	t.Setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
	got, ok := HubFile("org/name@v1", "tokenizer.json")
	if want := "http://127.0.0.1:9/org/name/resolve/v1/tokenizer.json"; !ok || got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
