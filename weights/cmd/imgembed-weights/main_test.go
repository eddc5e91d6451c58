package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(args, &out, &errb); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

func TestSynthConvertInspect(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full.safetensors")
	runOK(t, "synth", "--preset", "tiny", "--seed", "5", "--dtype", "f32", "--layers", "3", "--full", "--bare", "--out", full)
	out := runOK(t, "inspect", full)
	for _, want := range []string{"width 128, 3 layers, 2 heads, MLP 512, patch 16, image 64, projection 32", "vision check: ok",
		"text_projection.weight", "logit_scale", "I64", "56 of 67 tensors belong to the vision tower"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}

	// A config.json stating 4 heads: convert must record it in the
	// metadata, so the converted file needs no config.json.
	cfgPath := filepath.Join(dir, "config.json")
	os.WriteFile(cfgPath, []byte(`{"model_type":"clip","projection_dim":32,"vision_config":{"num_attention_heads":4}}`), 0o644)
	small := filepath.Join(dir, "vision-f16.safetensors")
	runOK(t, "convert", "--in", full, "--config", cfgPath, "--dtype", "f16", "--out", small)
	f, err := safetensors.Open(small)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := weights.ConfigFrom(f.Header, nil)
	if err != nil || cfg.NumHeads != 4 || cfg.NumLayers != 3 {
		t.Fatalf("converted config %+v, %v", cfg, err)
	}
	if len(f.Tensors) != 5+16*3+3 {
		t.Errorf("%d tensors after conversion", len(f.Tensors))
	}
	for _, ti := range f.Tensors {
		if ti.DType != safetensors.F16 {
			t.Errorf("%s is %s", ti.Name, ti.DType)
		}
	}
	if st, _ := os.Stat(small); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
	out = runOK(t, "inspect", small)
	if !strings.Contains(out, "4 heads") || !strings.Contains(out, "56 of 56") {
		t.Errorf("inspect of converted file:\n%s", out)
	}
	// No temporary files left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("directory holds %d entries", len(entries))
	}
}

func TestFixturesInspect(t *testing.T) {
	for _, name := range []string{"tiny-f32", "tiny-f16", "tiny-fullclip-f32", "b32l2-f16"} {
		out := runOK(t, "inspect", "../../../testdata/models/"+name+".safetensors")
		if !strings.Contains(out, "vision check: ok") {
			t.Errorf("%s:\n%s", name, out)
		}
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "page.html")
	os.WriteFile(bad, []byte("<!DOCTYPE html><title>404</title>"), 0o644)
	for _, c := range []struct {
		args []string
		want error
	}{
		{nil, errUsage},
		{[]string{"frobnicate"}, errUsage},
		{[]string{"synth", "--preset", "huge", "--out", filepath.Join(dir, "x")}, errUsage},
		{[]string{"synth", "--dtype", "int4", "--out", filepath.Join(dir, "x")}, errUsage},
		{[]string{"synth", "--preset", "tiny"}, errUsage},
		{[]string{"convert", "--in", bad, "--out", filepath.Join(dir, "y")}, safetensors.ErrNotSafetensors},
		{[]string{"inspect", bad}, safetensors.ErrNotSafetensors},
		{[]string{"inspect"}, errUsage},
	} {
		err := run(c.args, &bytes.Buffer{}, &bytes.Buffer{})
		if !errors.Is(err, c.want) {
			t.Errorf("%v: %v, want %v", c.args, err, c.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("failed runs left files: %d entries", len(entries))
	}
}
