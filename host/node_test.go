package host

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestMatchesNode runs the Node command (js/bin/imgembed.mjs: the same
// .wasm on TensorFlow.js's wasm backend) on the same inputs as the wazero
// host and requires the embeddings to agree to 1e-5 per component and the
// error codes of bad inputs to be the same.
func TestMatchesNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Node; skipped with -short")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: cannot compare with the Node path")
	}
	root, _ := filepath.Abs("..")
	cli := filepath.Join(root, "js", "bin", "imgembed.mjs")
	for _, need := range []string{cli, filepath.Join(root, "node_modules", "@tensorflow", "tfjs-backend-wasm"), filepath.Join(root, "js", "dist", "imgembed.wasm")} {
		if _, err := os.Stat(need); err != nil {
			t.Skipf("%s is missing (run `npm ci` and `make build`): cannot compare with the Node path", need)
		}
	}
	dir := t.TempDir()
	bad := map[string][]byte{"empty.png": {}, "page.html": []byte("<!DOCTYPE html><html></html>")}
	png, err := os.ReadFile(filepath.Join(testdataDir, "images", "chelsea.png"))
	if err != nil {
		t.Fatal(err)
	}
	bad["truncated.png"] = png[:len(png)/3]
	for n, b := range bad {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var srcs []string
	for _, img := range fixtureImages {
		p, _ := filepath.Abs(filepath.Join(testdataDir, "images", img))
		srcs = append(srcs, p)
	}
	for _, n := range []string{"empty.png", "page.html", "truncated.png"} {
		srcs = append(srcs, filepath.Join(dir, n))
	}

	for _, model := range []string{"tiny-f32", "b32l2-f16"} {
		t.Run(model, func(t *testing.T) {
			mp, _ := filepath.Abs(modelPath(model))
			cmd := exec.Command(node, append([]string{cli, "--no-cache", "--model", mp}, srcs...)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("node: %v (want exit 1: some inputs are bad)\n%s", err, stderr.String())
			}
			type nodeLine struct {
				Source    string    `json:"source"`
				Embedding []float64 `json:"embedding"`
				Error     *struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			var lines []nodeLine
			sc := bufio.NewScanner(&stdout)
			sc.Buffer(make([]byte, 1<<20), 1<<24)
			for sc.Scan() {
				var l nodeLine
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					t.Fatalf("node output %q: %v", sc.Text(), err)
				}
				lines = append(lines, l)
			}
			if len(lines) != len(srcs) {
				t.Fatalf("node printed %d lines for %d inputs", len(lines), len(srcs))
			}

			e := newTestEmbedder(t, mp)
			anys := make([]any, len(srcs))
			for i, s := range srcs {
				anys[i] = s
			}
			embs, errs, err := e.EmbedBatch(context.Background(), anys)
			if err != nil {
				t.Fatal(err)
			}
			for i, l := range lines {
				if l.Error != nil {
					var he *Error
					if errs[i] == nil || !errors.As(errs[i], &he) || string(he.Code) != l.Error.Code {
						t.Errorf("%s: node error %s, host %v", srcs[i], l.Error.Code, errs[i])
					}
					continue
				}
				if errs[i] != nil {
					t.Errorf("%s: node embedded it, host failed: %v", srcs[i], errs[i])
					continue
				}
				var maxd float64
				for k, v := range l.Embedding {
					maxd = math.Max(maxd, math.Abs(v-float64(embs[i][k])))
				}
				t.Logf("%s: max |node - wazero| = %.2e", filepath.Base(srcs[i]), maxd)
				if maxd > 1e-5 {
					t.Errorf("%s: max |node - wazero| = %.2e, want <= 1e-5", srcs[i], maxd)
				}
			}
		})
	}
}
