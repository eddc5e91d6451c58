// Command prepbench measures issue 8's goal for the wasm engine: "the same
// preprocessing under wazero within 1.5x of Node's time". It preprocesses
// the 12 MP JPEG of package benchphotos (--size 224) two ways, rounds
// interleaved:
//
//   - as a user runs the commands, one process per run (start included):
//     `imgembed preprocess --engine wasm` against
//     `node js/bin/imgembed.mjs preprocess`, with the native engine beside
//     them for reference; wall time and CPU (user+sys) per run;
//   - in process, warm: the Go API's wasm engine (host.NewPreprocessor)
//     against js/src's preprocess in one Node process, best of -reps.
//
// It prints each tool's median and the median of the per-round ratios
// wasm/Node. Run it from the repository's root after `make build`:
//
//	go run ./host/internal/cmd/prepbench [-runs 5] [-photo FILE]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imgembed/imgembed/host"
	"github.com/imgembed/imgembed/host/internal/benchphotos"
)

// nodeInProcess times js/src's preprocess in one Node process: one untimed
// call, then reps timed ones; prints the best and the median, in ms.
const nodeInProcess = `
import { readFileSync } from 'node:fs';
const [index, photo, reps] = process.argv.slice(1);
const { preprocess } = await import(index);
const data = new Uint8Array(readFileSync(photo));
await preprocess(data, { size: 224 });
const ts = [];
for (let i = 0; i < +reps; i++) {
  const t0 = performance.now();
  await preprocess(data, { size: 224 });
  ts.push(performance.now() - t0);
}
ts.sort((a, b) => a - b);
console.log(ts[0], ts[ts.length >> 1]);
`

type sample struct {
	wall, cpu float64 // seconds
}

func main() {
	runs := flag.Int("runs", 5, "rounds")
	reps := flag.Int("reps", 3, "timed preprocess calls per in-process measurement (after one untimed)")
	photo := flag.String("photo", "", "image to preprocess (default: benchphotos' 12 MP JPEG, written to a temporary directory)")
	flag.Parse()
	if err := run(*runs, *reps, *photo); err != nil {
		fmt.Fprintln(os.Stderr, "prepbench:", err)
		os.Exit(1)
	}
}

func run(runs, reps int, photo string) error {
	tmp, err := os.MkdirTemp("", "imgembed-prepbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if photo == "" {
		photo = filepath.Join(tmp, "12mp.jpg")
		if err := os.WriteFile(photo, benchphotos.Photo12MP(), 0o644); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(photo)
	if err != nil {
		return err
	}
	index, err := filepath.Abs("js/src/index.js")
	if err != nil {
		return err
	}
	if _, err := os.Stat(index); err != nil {
		return fmt.Errorf("run from the repository's root (%w)", err)
	}
	bin := filepath.Join(tmp, "imgembed")
	if out, err := exec.Command("go", "build", "-o", bin, "./host/cmd/imgembed").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(tmp, "out")
	// The Go command's cache directory holds wazero's compiled code: kept
	// between runs, as a user's second and later runs have it.
	env := append(os.Environ(), "IMGEMBED_CACHE_DIR="+filepath.Join(tmp, "cache"))
	tools := []struct {
		name string
		cmd  []string
	}{
		{"imgembed preprocess --engine wasm", []string{bin, "preprocess", "--engine", "wasm", "--size", "224", "--out", out, photo}},
		{"node js/bin/imgembed.mjs preprocess", []string{"node", "js/bin/imgembed.mjs", "preprocess", "--size", "224", "--out", out, photo}},
		{"imgembed preprocess (native)", []string{bin, "preprocess", "--size", "224", "--out", out, photo}},
	}
	// Untimed: fills wazero's compilation cache.
	if _, err := process(tools[0].cmd, env, out); err != nil {
		return err
	}

	pp, err := host.NewPreprocessor(context.Background(), host.Options{Engine: host.EngineWasm, CacheDir: filepath.Join(tmp, "cache"), Threads: 1})
	if err != nil {
		return err
	}
	defer pp.Close()
	if _, err := pp.Preprocess(context.Background(), data, 224); err != nil {
		return err
	}

	fmt.Printf("# %s (%d bytes), --size 224, %d rounds; the machine's load average at start: %s\n", photo, len(data), runs, loadavg())
	procs := make([][]sample, len(tools))
	var goIn, nodeIn []float64 // best of reps, seconds
	for r := 0; r < runs; r++ {
		for i := range tools {
			k := (i + r) % len(tools)
			s, err := process(tools[k].cmd, env, out)
			if err != nil {
				return err
			}
			procs[k] = append(procs[k], s)
		}
		// In process: alternate which goes first.
		inGo := func() error {
			best := 0.0
			for range reps {
				t0 := time.Now()
				if _, err := pp.Preprocess(context.Background(), data, 224); err != nil {
					return err
				}
				if d := time.Since(t0).Seconds(); best == 0 || d < best {
					best = d
				}
			}
			goIn = append(goIn, best)
			return nil
		}
		inNode := func() error {
			c := exec.Command("node", "--input-type=module", "-e", nodeInProcess, "--", "file://"+index, photo, strconv.Itoa(reps))
			var o, e bytes.Buffer
			c.Stdout, c.Stderr = &o, &e
			if err := c.Run(); err != nil {
				return fmt.Errorf("node in process: %v: %s", err, e.String())
			}
			f := strings.Fields(o.String())
			if len(f) < 1 {
				return fmt.Errorf("node in process: no output")
			}
			ms, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return fmt.Errorf("node in process: %q: %v", o.String(), err)
			}
			nodeIn = append(nodeIn, ms/1e3)
			return nil
		}
		first, second := inGo, inNode
		if r%2 == 1 {
			first, second = inNode, inGo
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}

	fmt.Println("\nAs a user runs them (one process per run, start included):")
	fmt.Println("| command | wall s (median, min-max) | CPU s (median) |")
	fmt.Println("| --- | --- | --- |")
	for i, t := range tools {
		w, c := field(procs[i], func(s sample) float64 { return s.wall }), field(procs[i], func(s sample) float64 { return s.cpu })
		fmt.Printf("| %s | %.2f (%.2f-%.2f) | %.2f |\n", t.name, median(w), slices.Min(w), slices.Max(w), median(c))
	}
	fmt.Println("\nIn process, warm (best of", reps, "calls per round):")
	fmt.Println("| engine | ms (median of rounds, min-max) |")
	fmt.Println("| --- | --- |")
	fmt.Printf("| Go API, wasm engine (wazero) | %.0f (%.0f-%.0f) |\n", 1e3*median(goIn), 1e3*slices.Min(goIn), 1e3*slices.Max(goIn))
	fmt.Printf("| Node, js/src preprocess | %.0f (%.0f-%.0f) |\n", 1e3*median(nodeIn), 1e3*slices.Min(nodeIn), 1e3*slices.Max(nodeIn))

	ratio := func(a, b []float64) float64 {
		r := make([]float64, len(a))
		for i := range a {
			r[i] = a[i] / b[i]
		}
		return median(r)
	}
	wall := func(i int) []float64 { return field(procs[i], func(s sample) float64 { return s.wall }) }
	cpu := func(i int) []float64 { return field(procs[i], func(s sample) float64 { return s.cpu }) }
	fmt.Println("\nwasm engine / Node (median of per-round ratios; goal <= 1.5x):")
	fmt.Printf("  commands, wall: %.2fx\n", ratio(wall(0), wall(1)))
	fmt.Printf("  commands, CPU:  %.2fx\n", ratio(cpu(0), cpu(1)))
	fmt.Printf("  in process:     %.2fx\n", ratio(goIn, nodeIn))
	return nil
}

// process runs cmd once (its output directory emptied first) and returns
// its wall time and CPU time (user+sys, children included).
func process(cmd, env []string, out string) (sample, error) {
	os.RemoveAll(out)
	c := exec.Command(cmd[0], cmd[1:]...)
	c.Env = env
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	t0 := time.Now()
	err := c.Run()
	wall := time.Since(t0).Seconds()
	if err != nil {
		return sample{}, fmt.Errorf("%s: %v: %s%s", strings.Join(cmd, " "), err, e.String(), o.String())
	}
	if !bytes.Contains(o.Bytes(), []byte(`"file"`)) {
		return sample{}, fmt.Errorf("%s: no file written: %s", strings.Join(cmd, " "), o.String())
	}
	s := sample{wall: wall}
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return s, nil
}

func field(s []sample, f func(sample) float64) []float64 {
	v := make([]float64, len(s))
	for i := range s {
		v[i] = f(s[i])
	}
	return v
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

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
