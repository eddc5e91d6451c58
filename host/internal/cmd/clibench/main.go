// Command clibench times the embedding commands end to end, as a user runs
// them: one process per run (start, model load, decoding, forward), over
// the mixed photo set of package benchphotos, with each tool's wall time
// and peak RSS. Runs are interleaved (round after round, the tools'
// order rotating), and each tool's time is also given as a ratio to
// transformers.js's in the same round, when its harness is given.
//
// The Go command runs three ways: as a user's second and later runs (its
// compiled-weights cache filled), as a first run (the cache emptied before
// each), and with --no-cache (derives the weights at every load, saves
// nothing).
//
//	go run ./host/internal/cmd/clibench -model B32.safetensors [-tjs ../shared/bench/tjs/embed.mjs]
//
// Run it from the repository's root after `make build` (the Node command
// needs the built module).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/imgembed/imgembed/host/internal/benchphotos"
)

type tool struct {
	name string
	cmd  []string // the photos are appended
	pre  func()   // before each run, untimed (nil: nothing)
	env  []string // added to the environment
}

type result struct {
	Tool     string  `json:"tool"`
	Round    int     `json:"round"`
	WallS    float64 `json:"wall_s"`
	PeakMB   float64 `json:"peak_rss_mb"` // 10^6 bytes
	Embedded int     `json:"embedded"`
	Inputs   int     `json:"inputs"`
	Exit     int     `json:"exit"`
}

func main() {
	model := flag.String("model", "", "ViT-B/32 safetensors file (required)")
	dir := flag.String("photos", "build/bench/photos", "where the photo set is written (afresh at every start, before any timing)")
	runs := flag.Int("runs", 3, "rounds")
	threads := flag.Int("threads", 2, "threads for every tool")
	tjs := flag.String("tjs", "", "transformers.js harness (../shared/bench/tjs/embed.mjs; prepared by its setup.sh); empty: not run")
	only := flag.String("only", "", "embed only this photo of the set (e.g. crop-rgba.png: start-up and load)")
	tools := flag.String("tools", "tjs,go,go-cold,go-no-cache,node-native,node,go-wasm", "which tools, in the first round's order")
	flag.Parse()
	if *model == "" {
		fmt.Fprintln(os.Stderr, "clibench: -model is required")
		os.Exit(2)
	}
	st, err := os.Stat(*model)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clibench:", err)
		os.Exit(2)
	}
	weightBytes := float64(st.Size())
	photos, err := benchphotos.WriteMixed(*dir, ".")
	if err != nil {
		fmt.Fprintln(os.Stderr, "clibench: photo set:", err)
		os.Exit(2)
	}
	if *only != "" {
		// One photo: what a command pays to start and load.
		photos = slices.DeleteFunc(photos, func(p string) bool { return filepath.Base(p) != *only })
		if len(photos) == 0 {
			fmt.Fprintf(os.Stderr, "clibench: no photo %q in the set\n", *only)
			os.Exit(2)
		}
	}
	bin := filepath.Join(os.TempDir(), fmt.Sprintf("imgembed-clibench-%d", os.Getpid()))
	if out, err := exec.Command("go", "build", "-o", bin, "./host/cmd/imgembed").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "clibench: go build: %v\n%s", err, out)
		os.Exit(2)
	}
	defer os.Remove(bin)

	// The Go command's own cache (compiled weights), as a user's: kept
	// between its runs ("go", filled by an untimed run first), or emptied
	// before each ("go-cold": a first run, which derives and saves them).
	cache, err := os.MkdirTemp("", "imgembed-clibench-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "clibench:", err)
		os.Exit(2)
	}
	defer os.RemoveAll(cache)
	empty := func() { os.RemoveAll(filepath.Join(cache, "compiled")) }

	th := fmt.Sprint(*threads)
	goCmd := []string{bin, "--cache-dir", cache, "--threads", th, "--model", *model}
	all := map[string]tool{
		"tjs":         {name: "transformers.js", cmd: []string{"node", *tjs, "--threads", th, "--model", *model}},
		"go":          {name: "imgembed (Go, native)", cmd: goCmd},
		"go-cold":     {name: "imgembed, first run (Go, native)", cmd: goCmd, pre: empty},
		"go-no-cache": {name: "imgembed --no-cache (Go, native)", cmd: []string{bin, "--no-cache", "--threads", th, "--model", *model}},
		"go-wasm":     {name: "imgembed --engine wasm", cmd: []string{bin, "--engine", "wasm", "--no-cache", "--threads", th, "--model", *model}},
		"node":        {name: "node js/bin/imgembed.mjs", cmd: []string{"node", "js/bin/imgembed.mjs", "--no-cache", "--threads", th, "--model", *model}},
		// The npm package's native backend (what `auto` picks in Node when
		// the platform's binary is installed), over the same cache as "go".
		"node-native": {name: "node js/bin/imgembed.mjs, native backend", cmd: []string{"node", "js/bin/imgembed.mjs", "--threads", th, "--model", *model},
			env: []string{"IMGEMBED_BINARY=" + bin, "IMGEMBED_CACHE_DIR=" + cache}},
	}
	var order []tool
	for _, k := range strings.Split(*tools, ",") {
		t, ok := all[k]
		if !ok {
			fmt.Fprintf(os.Stderr, "clibench: unknown tool %q\n", k)
			os.Exit(2)
		}
		if k == "tjs" && *tjs == "" {
			continue
		}
		order = append(order, t)
	}
	fmt.Printf("# %d photos in %s, model %s (%.1f MB), %d threads\n", len(photos), *dir, *model, weightBytes/1e6, *threads)
	if strings.Contains(","+*tools+",", ",go,") {
		if res := run(all["go"], photos); res.Exit != 0 {
			fmt.Fprintln(os.Stderr, "clibench: the Go command's warm-up run failed")
			os.Exit(1)
		}
	}
	var results []result
	enc := json.NewEncoder(os.Stdout)
	for r := 1; r <= *runs; r++ {
		for i := range order {
			t := order[(i+r-1)%len(order)]
			res := run(t, photos)
			res.Round = r
			enc.Encode(res)
			results = append(results, res)
		}
	}
	summary(order, results, weightBytes, *tjs != "")
}

// run runs one tool once over the photos.
func run(t tool, photos []string) result {
	if t.pre != nil {
		t.pre()
	}
	args := append(slices.Clone(t.cmd), photos...)
	c := exec.Command(args[0], args[1:]...)
	if t.env != nil {
		c.Env = append(os.Environ(), t.env...)
	}
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	start := time.Now()
	err := c.Run()
	wall := time.Since(start).Seconds()
	res := result{Tool: t.name, WallS: wall, Inputs: len(photos)}
	if c.ProcessState != nil {
		res.Exit = c.ProcessState.ExitCode()
		if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.PeakMB = float64(ru.Maxrss) * 1024 / 1e6 // Linux: KiB
		}
	} else if err != nil {
		fmt.Fprintf(os.Stderr, "clibench: %s: %v\n", t.name, err)
		res.Exit = -1
	}
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(`"embedding"`)) {
			res.Embedded++
		}
	}
	if res.Exit != 0 && errb.Len() > 0 {
		fmt.Fprintf(os.Stderr, "clibench: %s exited %d: %s\n", t.name, res.Exit, lastLine(errb.String()))
	}
	return res
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// summary prints, per tool, the median and range of the wall times, the
// median peak RSS (and its ratio to the weight file), what it embedded,
// and the median of its per-round ratio to transformers.js.
func summary(order []tool, results []result, weightBytes float64, withTJS bool) {
	tjs := map[int]float64{}
	for _, r := range results {
		if r.Tool == "transformers.js" {
			tjs[r.Round] = r.WallS
		}
	}
	fmt.Printf("\n| tool | wall s (median, min-max) | peak RSS MB (median, x weights) | embedded |%s\n", map[bool]string{true: " vs transformers.js (median of rounds) |"}[withTJS])
	fmt.Printf("| --- | --- | --- | --- |%s\n", map[bool]string{true: " --- |"}[withTJS])
	for _, t := range order {
		var walls, peaks, ratios []float64
		embedded, inputs := -1, 0 // embedded: the fewest of any run
		for _, r := range results {
			if r.Tool != t.name {
				continue
			}
			walls, peaks = append(walls, r.WallS), append(peaks, r.PeakMB)
			if embedded < 0 || r.Embedded < embedded {
				embedded = r.Embedded
			}
			inputs = r.Inputs
			if b, ok := tjs[r.Round]; ok && b > 0 {
				ratios = append(ratios, r.WallS/b)
			}
		}
		line := fmt.Sprintf("| %s | %.2f (%.2f-%.2f) | %.0f (%.2fx) | %d/%d |", t.name,
			median(walls), slices.Min(walls), slices.Max(walls), median(peaks), median(peaks)*1e6/weightBytes, embedded, inputs)
		if withTJS {
			line += fmt.Sprintf(" %.2fx |", median(ratios))
		}
		fmt.Println(line)
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
