//go:build js && wasm

// Command opdiff is the differential test of the op list under Node: it runs
// the CLIP vision graph once through opdiff.Ops over TensorFlow.js (the `tf`
// global, via wasm/jsops) and the pure Go kernels (wasm/ops/native, compiled
// to wasm), comparing every op, and then each backend alone end to end. The
// JSON report goes to -out; js/test/differential.test.mjs builds this
// program, initialises tfjs and asserts on the report.
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"
	"syscall/js"

	"github.com/imgembed/imgembed/wasm/internal/opdiff"
	"github.com/imgembed/imgembed/wasm/jsops"
	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/wasm/ops/native"
	"github.com/imgembed/imgembed/wasm/vit"
)

// Report is what -out receives.
type Report struct {
	Model    string                 `json:"model"`
	Images   int                    `json:"images"`
	Resync   bool                   `json:"resync"`
	Records  []opdiff.Record        `json:"records"`
	Failures []opdiff.Record        `json:"failures"`
	Worst    []opdiff.Record        `json:"worst"` // one per op name
	Summary  string                 `json:"summary"`
	Embed    map[string][][]float32 `json:"embeddings"` // "tfjs", "native": each backend alone
}

func main() {
	model := flag.String("model", "", "safetensors file")
	pixels := flag.String("pixels", "", "comma-separated preprocessed CHW float32 files (little-endian)")
	resync := flag.Bool("resync", true, "give B A's output after every op (isolates each op's error)")
	out := flag.String("out", "", "JSON report path")
	tfName := flag.String("tf", "tf", "global holding the TensorFlow.js namespace")
	verbose := flag.Bool("v", false, "print the worst record of every op")
	ioName := flag.String("js-io", "", "browsers: global object {files: {path: Uint8Array}} read instead of the file system; the report goes to its .report (a JSON string)")
	asyncRead := flag.Bool("async-read", false, "read tfjs results with await t.data() (GPU backends)")
	flag.Parse()
	if *ioName != "" {
		jsIO = js.Global().Get(*ioName)
	}
	asyncReads = *asyncRead
	if err := run(*model, *pixels, *resync, *out, *tfName, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "opdiff:", err)
		os.Exit(2)
	}
}

func run(model, pixelList string, resync bool, out, tfName string, verbose bool) error {
	if model == "" || pixelList == "" || out == "" {
		return fmt.Errorf("need -model, -pixels and -out")
	}
	var px []float32
	files := strings.Split(pixelList, ",")
	for _, f := range files {
		b, err := readFile(f)
		if err != nil {
			return err
		}
		for i := 0; i+4 <= len(b); i += 4 {
			px = append(px, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
		}
	}
	tf, err := jsops.New(js.Global().Get(tfName))
	if err != nil {
		return err
	}
	tf.UseBackend(jsops.Backend{AsyncRead: asyncReads})
	nat := native.New(1)
	defer nat.Close()

	d := opdiff.New(tf, nat)
	d.Resync = resync
	if _, err := embed(d, model, px, len(files)); err != nil {
		return err
	}
	rep := Report{Model: model, Images: len(files), Resync: resync, Records: d.Records(),
		Failures: d.Failures(), Summary: d.Summary(), Embed: map[string][][]float32{}}
	for _, r := range d.Worst() {
		rep.Worst = append(rep.Worst, r)
	}
	for name, o := range map[string]ops.Ops{"tfjs": tf, "native": nat} {
		e, err := embed(o, model, px, len(files))
		if err != nil {
			return fmt.Errorf("%s alone: %w", name, err)
		}
		rep.Embed[name] = e
	}
	j, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	if verbose {
		fmt.Print(rep.Summary)
	}
	if jsIO.Type() == js.TypeObject {
		jsIO.Set("report", string(j))
		return nil
	}
	return os.WriteFile(out, j, 0o644)
}

// jsIO is the -js-io object (undefined: use the file system).
var (
	jsIO       = js.Undefined()
	asyncReads bool
)

func readFile(name string) ([]byte, error) {
	if jsIO.Type() != js.TypeObject {
		return os.ReadFile(name)
	}
	u8 := jsIO.Get("files").Get(name)
	if u8.Type() != js.TypeObject {
		return nil, fmt.Errorf("%s: not in the -js-io files", name)
	}
	b := make([]byte, u8.Length())
	js.CopyBytesToGo(b, u8)
	return b, nil
}

func embed(o ops.Ops, model string, px []float32, n int) ([][]float32, error) {
	var m *vit.Model
	var err error
	if jsIO.Type() == js.TypeObject {
		var b []byte
		if b, err = readFile(model); err == nil {
			m, err = opdiff.LoadViTBytes(o, model, b)
		}
	} else {
		m, err = opdiff.LoadViT(o, model)
	}
	if err != nil {
		return nil, err
	}
	defer m.Dispose()
	return m.Forward(px, n)
}
