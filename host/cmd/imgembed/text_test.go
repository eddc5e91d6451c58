package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

// runNode runs the Node command with args (skipped without node).
func runNode(t *testing.T, args ...string) result {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	cmd := exec.Command(node, append([]string{filepath.Join("..", "..", "..", "js", "bin", "imgembed.mjs")}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
	err = cmd.Run()
	r := result{stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running node: %v", err)
	}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("output line is not JSON: %q: %v", sc.Text(), err)
		}
		r.lines = append(r.lines, l)
	}
	return r
}

func readGoldenJSON(t *testing.T, name string) map[string][]float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, "golden", name))
	if err != nil {
		t.Fatal(err)
	}
	var g map[string][]float64
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func cosine(a []float32, b []float64) float64 {
	var d float64
	for i := range a {
		d += float64(a[i]) * b[i]
	}
	return d
}

// TestTextBothCLIs: --text mixed with images, one line per input in
// command-line order, the same lines and exit codes from the Go and the
// Node command.
func TestTextBothCLIs(t *testing.T) {
	model := filepath.Join(testdata, "models", "tiny-fullclip-f32.safetensors")
	tok := filepath.Join(testdata, "tokenizer", "tokenizer.json")
	img := filepath.Join(testdata, "images", "chelsea.png")
	missing := filepath.Join(testdata, "images", "nope.png")
	texts := readGoldenJSON(t, "embed-text-tiny-fullclip-f32.json")
	images := readGoldenJSON(t, "embed-tiny-fullclip-f32.json")
	ok := []string{"--model", model, "--tokenizer", tok, "--text", "a photo of a cat", img, "--text", "A photo of a dog.", "--text=", img}
	wantSources := []string{"a photo of a cat", img, "A photo of a dog.", "", img}
	for name, run := range map[string]func(...string) result{
		"go":   func(a ...string) result { return runCmd(t, nil, a...) },
		"node": func(a ...string) result { return runNode(t, a...) },
	} {
		r := run(ok...)
		if r.code != exitOK || len(r.lines) != len(wantSources) {
			t.Fatalf("%s: exit %d, %d lines; stderr %s", name, r.code, len(r.lines), r.stderr)
		}
		for i, l := range r.lines {
			if l.Source != wantSources[i] || l.Error != nil {
				t.Fatalf("%s: line %d: source %q error %v", name, i, l.Source, l.Error)
			}
			want, isText := texts[l.Source]
			if !isText {
				want = images["images/chelsea.png"]
			}
			if c := cosine(l.Embedding, want); (isText && c < 0.99999) || c < 0.9999 {
				t.Errorf("%s: %q: cosine %v", name, l.Source, c)
			}
		}
		// Texts only; a failing image among texts: exit 1, the others still embedded.
		r = run("--model", model, "--tokenizer", tok, "--text", "a photo of a cat", "--text", "A photo of a dog.")
		if r.code != exitOK || len(r.lines) != 2 || r.lines[1].Source != "A photo of a dog." {
			t.Errorf("%s texts only: exit %d, lines %v", name, r.code, r.lines)
		}
		r = run("--model", model, "--tokenizer", tok, "--text", "a photo of a cat", missing)
		if r.code != exitFailed || len(r.lines) != 2 || r.lines[0].Error != nil || r.lines[1].Error == nil {
			t.Errorf("%s missing image: exit %d, lines %v", name, r.code, r.lines)
		}
		// A model without a text tower: exit 2, the message names the tensor.
		r = run("--model", filepath.Join(testdata, "models", "tiny-f32.safetensors"), "--tokenizer", tok, "--text", "a cat")
		if r.code != exitUsage || !bytes.Contains([]byte(r.stderr), []byte("token_embedding")) {
			t.Errorf("%s vision-only model: exit %d, stderr %s", name, r.code, r.stderr)
		}
	}
}

func TestSplitTexts(t *testing.T) {
	for _, c := range []struct {
		args, rest []string
		texts      []textArg
	}{
		{[]string{"--text", "a", "x.png", "--text=b", "y.png", "-text", "c"},
			[]string{"x.png", "y.png"}, []textArg{{"a", 0}, {"b", 1}, {"c", 2}}},
		{[]string{"--model", "--text", "--text", "t", "x.png"}, // --model's value is "--text"
			[]string{"--model", "--text", "x.png"}, []textArg{{"t", 0}}},
		{[]string{"--batch", "2", "x.png", "--batch", "y.png", "--text", "t"},
			[]string{"--batch", "2", "x.png", "--batch", "y.png"}, []textArg{{"t", 3}}},
		{[]string{"--", "--text", "x"}, []string{"--", "--text", "x"}, nil},
	} {
		rest, texts := splitTexts(c.args)
		if !reflect.DeepEqual(rest, c.rest) || !reflect.DeepEqual(texts, c.texts) {
			t.Errorf("%q: rest %q texts %v; want %q %v", c.args, rest, texts, c.rest, c.texts)
		}
	}
}
