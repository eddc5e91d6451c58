package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The messages a person reads, in both commands (this one and the Node
// package's js/bin/imgembed.mjs) with the same arguments: the code once,
// plain words, the input's own name, a hint where one helps, and no Go
// package prefix.
func TestMessages(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	text := write("notes.txt", "this is not an image")
	html := write("page.jpg", "<!DOCTYPE html><html><body>Sign in</body></html>")
	model := filepath.Join(testdata, "models", "tiny-f32.safetensors")
	png := filepath.Join(testdata, "images", "coffee.png")
	missing := filepath.Join(dir, "missing.safetensors")
	// A port nothing listens on: the request gets no answer at all.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/model.safetensors"
	l.Close()

	cases := []struct {
		name string
		args []string
		// want: the first line of the error (an input's JSON message, or
		// the command's stderr line for a model error), exactly or as a
		// prefix (wantPrefix).
		want       string
		wantPrefix bool
		modelError bool
	}{
		{name: "text file as an image", args: []string{"--model", model, text},
			want: text + `: unrecognised leading bytes "this is "`},
		{name: "HTML page as an image", args: []string{"--model", model, html},
			want: html + ": an HTML page (an error or login page instead of the image?), not an image"},
		{name: "PNG as the model", args: []string{"--model", png, text}, modelError: true,
			want: "imgembed: cannot load the model: InvalidModel: " + png + ": not a safetensors file: it looks like a PNG image"},
		{name: "missing local model", args: []string{"--model", missing, text}, modelError: true,
			want: "imgembed: cannot load the model: DownloadFailed: model file " + missing + " does not exist"},
		{name: "offline", args: []string{"--model", closed, text}, modelError: true, wantPrefix: true,
			want: "imgembed: cannot load the model: DownloadFailed: cannot reach " + closed + " (offline, or the host is unreachable? a local safetensors file works without network): "},
	}
	runners := map[string][]string{"go": {command(t)}}
	if node := nodeCommand(t); node != nil {
		runners["node"] = node
	}
	for _, c := range cases {
		for who, argv := range runners {
			t.Run(c.name+"/"+who, func(t *testing.T) {
				cmd := exec.Command(argv[0], append(argv[1:], c.args...)...)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				cmd.Env = append(os.Environ(), "IMGEMBED_CACHE_DIR="+filepath.Join(dir, "cache"), "IMGEMBED_MODEL=")
				cmd.Run()
				var got string
				if c.modelError {
					got, _, _ = strings.Cut(strings.TrimSpace(stderr.String()), "\n")
				} else {
					var l struct {
						Error struct{ Code, Message string }
					}
					if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &l); err != nil {
						t.Fatalf("output %q: %v (stderr %s)", stdout.String(), err, stderr.String())
					}
					got = l.Error.Message
				}
				if c.wantPrefix && !strings.HasPrefix(got, c.want) || !c.wantPrefix && got != c.want {
					t.Errorf("got  %q\nwant %q", got, c.want)
				}
				for _, bad := range []string{"imagefile:", "safetensors:", "loader:", "UnsupportedImageFormat: Unsupported", "InvalidModel: InvalidModel", "DownloadFailed: DownloadFailed"} {
					if strings.Contains(got, bad) {
						t.Errorf("%q contains %q", got, bad)
					}
				}
			})
		}
	}
}

// nodeCommand is the Node package's command, or nil (with a log line) where
// node, node_modules or the built module is missing.
func nodeCommand(t *testing.T) []string {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Log("node is not installed: the Node command is not checked")
		return nil
	}
	root, _ := filepath.Abs("../../..")
	cli := filepath.Join(root, "js", "bin", "imgembed.mjs")
	for _, need := range []string{filepath.Join(root, "node_modules", "@tensorflow", "tfjs-backend-wasm"), filepath.Join(root, "js", "dist", "imgembed.wasm")} {
		if _, err := os.Stat(need); err != nil {
			t.Logf("%s is missing (npm ci, make build): the Node command is not checked", need)
			return nil
		}
	}
	return []string{node, cli}
}
