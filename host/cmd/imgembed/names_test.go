package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSourceLinesMatchNode: given the same arguments — a file name that is
// not UTF-8, a FIFO, /dev/zero — the Go command and the Node command print
// the same "source" (the caller's bytes, surrogate-escaped) and the same
// error codes, byte for byte up to the embedding.
func TestSourceLinesMatchNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Node")
	}
	node, err := exec.LookPath("node")
	root, _ := filepath.Abs(filepath.Join("..", "..", ".."))
	cli := filepath.Join(root, "js", "bin", "imgembed.mjs")
	if err != nil {
		t.Skip("no node")
	}
	for _, need := range []string{filepath.Join(root, "node_modules", "@tensorflow", "tfjs-backend-wasm"), filepath.Join(root, "js", "dist", "imgembed.wasm")} {
		if _, err := os.Stat(need); err != nil {
			t.Skipf("%s missing (npm ci, make build)", need)
		}
	}
	dir := t.TempDir()
	img, err := os.ReadFile(filepath.Join(testdata, "images", "coffee.png"))
	if err != nil {
		t.Fatal(err)
	}
	name := "caf\xe9-\xff.png"
	if err := os.WriteFile(filepath.Join(dir, name), img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.png"), 0o644); err != nil {
		t.Fatal(err)
	}
	model, _ := filepath.Abs(filepath.Join(testdata, "models", "tiny-f32.safetensors"))
	args := []string{"--model", model, "pipe.png", "/dev/zero", name, "missing\xfe.png"}
	run := func(bin string, pre ...string) []string {
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append(pre, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "IMGEMBED_CACHE_DIR="+t.TempDir(), "XDG_CACHE_HOME="+t.TempDir())
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Run()
		if ctx.Err() != nil {
			t.Fatalf("%s did not finish", bin)
		}
		var heads []string
		for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
			// The source and the outcome: the code, or that it embedded.
			var v struct {
				Error *struct{ Code string } `json:"error"`
			}
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				t.Fatalf("%s printed %q: %v\n%s", bin, l, err, stderr.String())
			}
			src := l[:strings.Index(l, `",`)+1]
			outcome := "embedding"
			if v.Error != nil {
				outcome = v.Error.Code
			}
			heads = append(heads, src+" "+outcome)
		}
		return heads
	}
	goLines := run(command(t))
	nodeLines := run(node, cli)
	t.Logf("go:   %q", goLines)
	t.Logf("node: %q", nodeLines)
	want := []string{
		`{"source":"pipe.png" InvalidInput`,
		`{"source":"/dev/zero" InvalidInput`,
		`{"source":"caf\udce9-\udcff.png" embedding`,
		`{"source":"missing\udcfe.png" InvalidInput`,
	}
	if strings.Join(goLines, "\n") != strings.Join(want, "\n") || strings.Join(nodeLines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("go %q\nnode %q\nwant %q", goLines, nodeLines, want)
	}
}
