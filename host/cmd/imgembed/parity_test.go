package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Both commands (this one and js/bin/imgembed.mjs) take the same flags and
// variables, answer --help on stdout with exit 0, and print embeddings as
// float32 in the fewest digits that read back as the same float32.
func TestCommandParity(t *testing.T) {
	runners := map[string][]string{"go": {command(t)}}
	if node := nodeCommand(t); node != nil {
		runners["node"] = node
	}
	model, _ := filepath.Abs(filepath.Join(testdata, "models", "tiny-f32.safetensors"))
	photo, _ := filepath.Abs(filepath.Join(testdata, "images", "coffee.png"))
	data, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "model.safetensors", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()

	run := func(t *testing.T, argv []string, env []string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command(argv[0], append(argv[1:], args...)...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		cmd.Env = append(os.Environ(), "IMGEMBED_MODEL=", "IMGEMBED_CACHE_DIR="+t.TempDir())
		cmd.Env = append(cmd.Env, env...)
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code
	}
	for who, argv := range runners {
		t.Run(who, func(t *testing.T) {
			out, errOut, code := run(t, argv, nil, "--help")
			if code != 0 || !strings.Contains(out, "usage") || strings.Contains(errOut, "usage") {
				t.Errorf("--help: exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			for _, flag := range []string{"--model", "--batch", "--threads", "--cache-dir", "--no-cache", "--no-revalidate", "--max-pixels", "--download-timeout", "--text", "--tokenizer"} {
				if !strings.Contains(out, strings.TrimPrefix(flag, "-")) {
					t.Errorf("--help does not mention %s", flag)
				}
			}

			// IMGEMBED_MODEL as the default model; numbers as float32.
			out, errOut, code = run(t, argv, []string{"IMGEMBED_MODEL=" + model}, photo)
			if code != 0 {
				t.Fatalf("IMGEMBED_MODEL: exit %d: %s", code, errOut)
			}
			var line struct {
				Embedding []json.Number
			}
			dec := json.NewDecoder(strings.NewReader(out))
			dec.UseNumber()
			if err := dec.Decode(&line); err != nil || len(line.Embedding) != 32 {
				t.Fatalf("output %q: %v", out, err)
			}
			for _, n := range line.Embedding {
				f, err := strconv.ParseFloat(string(n), 32)
				if err != nil {
					t.Fatal(err)
				}
				if want := strconv.FormatFloat(f, 'g', -1, 32); strings.ReplaceAll(string(n), "e-0", "e-") != strings.ReplaceAll(want, "e-0", "e-") {
					t.Errorf("%s is not float32's shortest form %s", n, want)
					break
				}
			}

			// --max-pixels.
			out, _, code = run(t, argv, nil, "--model", model, "--max-pixels", "1000", photo)
			if code != 1 || !strings.Contains(out, `"ImageTooLarge"`) {
				t.Errorf("--max-pixels: exit %d, %s", code, out)
			}

			// --cache-dir: a URL model is cached there.
			dir := t.TempDir()
			_, errOut, code = run(t, argv, nil, "--model", srv.URL+"/model.safetensors", "--cache-dir", dir, photo)
			if code != 0 {
				t.Fatalf("--cache-dir: exit %d: %s", code, errOut)
			}
			var files []string
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && strings.HasSuffix(p, ".safetensors") {
					files = append(files, p)
				}
				return nil
			})
			if len(files) == 0 {
				t.Errorf("--cache-dir %s holds no model", dir)
			}

			// A cache hit asks the server once whether the model changed
			// (ETag); --no-revalidate asks nothing.
			for _, c := range []struct {
				flags []string
				want  int64
			}{{nil, 1}, {[]string{"--no-revalidate"}, 0}} {
				before := requests.Load()
				args := append(append([]string{"--model", srv.URL + "/model.safetensors", "--cache-dir", dir}, c.flags...), photo)
				if _, errOut, code := run(t, argv, nil, args...); code != 0 {
					t.Fatalf("cache hit %v: exit %d: %s", c.flags, code, errOut)
				}
				if got := requests.Load() - before; got != c.want {
					t.Errorf("cache hit %v: %d requests to the model's server, want %d", c.flags, got, c.want)
				}
			}
		})
	}
}
